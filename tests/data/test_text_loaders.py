"""goodbooks-10k metadata and Last.fm artist-name loaders (generated files; real data)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from funnelrec.data.dataset import Dataset
from funnelrec.data.loaders import (
    attach_items,
    load_dataset,
    load_goodbooks,
    load_lastfm_artists,
)
from funnelrec.errors import DataError

HEADER = (
    "book_id,goodreads_book_id,best_book_id,work_id,books_count,isbn,isbn13,authors,"
    "original_publication_year,original_title,title,language_code,average_rating,ratings_count,"
    "work_ratings_count,work_text_reviews_count,ratings_1,ratings_2,ratings_3,ratings_4,"
    "ratings_5,image_url,small_image_url"
)


def book(book_id: str, authors: str, title: str) -> str:
    return f'{book_id},1,1,1,1,1,1,"{authors}",1997.0,{title},"{title} (Series, #1)",eng,4.4,10,1,1,1,1,1,1,1,http://x/{book_id}.jpg,s'


def write_books(folder: Path, *rows: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "books.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    return folder


def test_goodbooks_catalogue_without_interactions(tmp_path: Path) -> None:
    folder = write_books(
        tmp_path / "gb", book("1", "A. Author, B. Writer", "Dune"), book("7", "C", "Emma")
    )
    ds = load_dataset(folder)
    assert ds.name == "goodbooks-10k-meta" and len(ds) == 0 and ds.n_items == 2
    assert ds.item_ids.ids == [1, 7]
    first = ds.items.row(0, named=True)
    assert first["title"] == "Dune (Series, #1)" and first["authors"] == ["A. Author", "B. Writer"]
    assert first["year"] == 1997 and first["image_url"] == "http://x/1.jpg"


def test_goodbooks_bad_and_duplicate_ids_name_the_line(tmp_path: Path) -> None:
    folder = write_books(tmp_path / "a", book("1", "A", "X"), book("1", "B", "Y"))
    with pytest.raises(DataError, match=r"line 3.*duplicate book_id 1"):
        load_goodbooks(folder)
    folder = write_books(tmp_path / "b", book("1", "A", "X"), book("x2", "B", "Y"))
    with pytest.raises(DataError, match=r"line 3.*bad book_id 'x2'"):
        load_goodbooks(folder)


def test_lastfm_artists_and_attach(tmp_path: Path) -> None:
    path = tmp_path / "artists.dat"
    path.write_text(
        "id\tname\turl\tpictureURL\n1\tMALICE MIZER\tu1\tp1\n7\tDiary of Dreams\tu7\tp7\n"
    )
    artists = load_lastfm_artists(path)
    assert artists["title"].to_list() == ["MALICE MIZER", "Diary of Dreams"]
    frame = pl.DataFrame({"user_id": [1, 1], "item_id": [7, 3], "timestamp": [1, 2]})
    ds = attach_items(Dataset.from_frame(frame), artists)
    assert ds.items["title"].to_list() == ["Diary of Dreams", None]  # item 3 has no name
    path.write_text("id\tname\turl\tpictureURL\n1\tA\tu\tp\n1\tB\tu\tp\n")
    with pytest.raises(DataError, match="line 3, column 'item_id'"):
        load_lastfm_artists(path)


def test_real_goodbooks_and_lastfm(shared_data: Path) -> None:
    books = shared_data / "goodbooks-10k-meta"
    artists_dir = shared_data / "lastfm-kg"
    if not books.is_dir() or not artists_dir.is_dir():
        pytest.skip("goodbooks-10k-meta / lastfm-kg not present")
    ds = load_dataset(books)
    assert ds.n_items == 10_000 and ds.items["title"].null_count() == 0
    assert load_lastfm_artists(artists_dir).height == 17_632
