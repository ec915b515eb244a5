"""Does retrieval cover a user's several interests? (single- vs multi-interest recall)

For recommendations ``topk`` ``[U, k]`` and each user's history and test items (item
categories as the interests), all averaged over users:

* ``hist_cat_cover@k``: share of the history's distinct categories present in the list;
* ``test_cat_hit@k``: share of the test items' distinct categories present in the list;
* ``minority_recall@k``: Recall@k over the users whose test item is in a *minority* category
  (present in, but under ``minority`` of, their history; ``minority_users`` counts them);
* ``head1_share@k`` and ``coverage@k`` (``metrics``): the head problem.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from funnelrec import ragged
from funnelrec.data.splits import Split
from funnelrec.eval import metrics
from funnelrec.eval.protocol import RecommendFn, collect_topk
from funnelrec.ragged import IntArray

MINORITY = 0.2


def _category_counts(
    offsets: IntArray, items: IntArray, cats: IntArray, n_cats: int
) -> sp.csr_matrix:
    """``[U, n_cats]`` counts of each row's items per category (uncategorised items skipped)."""
    rows, c = ragged.row_ids(offsets), cats[items]
    ok = c >= 0
    shape = (len(offsets) - 1, n_cats)
    return sp.csr_matrix((np.ones(int(ok.sum())), (rows[ok], c[ok])), shape=shape)


def _share_covered(reference: sp.csr_matrix, found: sp.csr_matrix) -> float:
    """Mean over rows with a reference of |cats(found) ∩ cats(reference)| / |cats(reference)|."""
    ref = (reference > 0).astype(np.float64)
    both = np.asarray(ref.multiply(found > 0).sum(1)).ravel()
    total = np.asarray(ref.sum(1)).ravel()
    has = total > 0
    return float(np.mean(both[has] / total[has])) if has.any() else float("nan")


def interest_metrics(
    topk: IntArray,
    history: tuple[IntArray, IntArray],
    truth: tuple[IntArray, IntArray],
    item_category: npt.ArrayLike,
    popularity: npt.ArrayLike,
    k: int,
    minority: float = MINORITY,
) -> dict[str, float]:
    """Interest coverage, minority-interest recall and head share of ``topk[:, :k]``.

    Args:
        topk: ``[U, >=k]`` recommendations, ``-1`` padded.
        history, truth: ragged ``(offsets, items)`` of the same users' history / test items.
        item_category: ``[n_items]`` category code per item (``-1``: none).
        popularity: ``[n_items]`` train interaction counts.
    """
    top = np.asarray(topk)[:, :k]
    cats = np.asarray(item_category, dtype=np.int64)
    n_cats = int(cats.max(initial=-1)) + 1
    valid = top >= 0
    rec_off = ragged.offsets_from_lengths(valid.sum(1))
    rec = _category_counts(rec_off, top[valid], cats, n_cats)
    hist = _category_counts(*history, cats, n_cats)
    test = _category_counts(*truth, cats, n_cats)
    share = hist.multiply(1.0 / np.maximum(np.asarray(hist.sum(1)), 1.0)).tocsr()
    t_rows = ragged.row_ids(truth[0])
    t_cats = cats[truth[1]]
    t_share = np.asarray(share[t_rows, np.maximum(t_cats, 0)]).ravel()
    minority_item = (t_cats >= 0) & (t_share > 0) & (t_share < minority)
    users = np.unique(t_rows[minority_item])
    out = {
        f"hist_cat_cover@{k}": _share_covered(hist, rec),
        f"test_cat_hit@{k}": _share_covered(test, rec),
        f"head1_share@{k}": metrics.head_share(top, popularity, 0.01),
        f"coverage@{k}": metrics.coverage(top, len(cats)),
        "minority_users": float(len(users)),
    }
    if len(users):
        mask = np.isin(t_rows, users)
        m_off = ragged.offsets_from_row_ids(np.searchsorted(users, t_rows[mask]), len(users))
        at_k = metrics.ranking_metrics(top[users], m_off, truth[1][mask], ks=(k,))
        out[f"minority_recall@{k}"] = at_k[f"recall@{k}"]
    return out


def interest_report(recommend: RecommendFn, split: Split, k: int = 200) -> dict[str, float]:
    """``interest_metrics`` of ``recommend`` over the test users (history = train + valid)."""
    users = split.test_users()
    topk = collect_topk(recommend, split, users, k)
    h_off, h_items, _ = split.history.query(users, 1).recent_history(10**9)
    truth = split.truth(split.test, users)
    cats = split.train.item_categories[0]
    return interest_metrics(topk, (h_off, h_items), truth, cats, split.train.item_popularity, k)
