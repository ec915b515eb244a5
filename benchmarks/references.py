"""Peer reference figures quoted in the issues (measured on this machine class by peers).

"pop", "implicit-*" were scored by an independent evaluator, "recbole-*" by RecBole itself.
Keys: (dataset, protocol) → {peer model: metrics}. Only used for comparison in BENCHMARKS.md.
"""

from __future__ import annotations

PEERS: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    ("ml-100k", "loo"): {
        "pop": {
            "recall@10": 0.0859,
            "recall@20": 0.1273,
            "ndcg@10": 0.0443,
            "recall@200": 0.4730,
            "wall_s": 0.7,
        },
        "implicit-als": {
            "recall@10": 0.1389,
            "recall@20": 0.2100,
            "ndcg@10": 0.0685,
            "recall@200": 0.6331,
            "wall_s": 3.1,
        },
        "implicit-bpr": {
            "recall@10": 0.1304,
            "recall@20": 0.2025,
            "ndcg@10": 0.0678,
            "recall@200": 0.6151,
            "wall_s": 9.9,
        },
        "implicit-itemknn-cosine": {
            "recall@10": 0.1007,
            "ndcg@10": 0.0514,
            "recall@200": 0.6363,
            "wall_s": 1.1,
        },
        "recbole-pop": {
            "recall@10": 0.0732,
            "recall@20": 0.1241,
            "ndcg@10": 0.0347,
            "recall@200": 0.4761,
            "wall_s": 8.6,
        },
        "recbole-bpr": {
            "recall@10": 0.1241,
            "recall@20": 0.1951,
            "ndcg@10": 0.0673,
            "recall@200": 0.7116,
            "wall_s": 29.5,
        },
        "recbole-itemknn": {
            "recall@10": 0.1145,
            "ndcg@10": 0.0629,
            "recall@200": 0.6808,
            "wall_s": 7.1,
        },
        "recbole-lightgcn": {
            "recall@10": 0.0923,
            "recall@20": 0.1591,
            "ndcg@10": 0.0489,
            "recall@200": 0.6490,
            "wall_s": 120.4,
        },
        "recbole-gru4rec": {
            "recall@10": 0.1071,
            "recall@20": 0.1580,
            "ndcg@10": 0.0515,
            "recall@200": 0.6066,
            "wall_s": 292.5,
        },
        "recbole-sasrec": {
            "recall@10": 0.1760,
            "recall@20": 0.2704,
            "ndcg@10": 0.0917,
            "recall@200": 0.7635,
            "wall_s": 384.7,
        },
    },
    ("ml-100k", "rs811"): {
        "pop": {
            "recall@10": 0.1274,
            "ndcg@10": 0.1441,
            "mrr@10": 0.2692,
            "hit@10": 0.5822,
            "wall_s": 0.7,
        },
        "implicit-als": {
            "recall@10": 0.2344,
            "ndcg@10": 0.2482,
            "mrr@10": 0.4185,
            "hit@10": 0.7678,
            "wall_s": 2.8,
        },
        "implicit-bpr": {
            "recall@10": 0.1787,
            "ndcg@10": 0.1968,
            "mrr@10": 0.3557,
            "hit@10": 0.6925,
            "wall_s": 10.6,
        },
        "recbole-bpr": {
            "recall@10": 0.2432,
            "ndcg@10": 0.2864,
            "mrr@10": 0.4826,
            "hit@10": 0.7773,
            "wall_s": 37.7,
        },
        "recbole-lightgcn": {
            "recall@10": 0.2534,
            "ndcg@10": 0.2983,
            "mrr@10": 0.4953,
            "hit@10": 0.7953,
            "wall_s": 245.0,
        },
    },
    ("amazon-beauty-seq", "loo"): {
        "pop": {
            "recall@10": 0.0114,
            "recall@20": 0.0201,
            "ndcg@10": 0.0054,
            "recall@200": 0.0784,
            "wall_s": 10.9,
        },
        "implicit-als": {
            "recall@10": 0.0423,
            "recall@20": 0.0663,
            "ndcg@10": 0.0213,
            "recall@200": 0.2096,
            "wall_s": 64.0,
        },
        "implicit-bpr": {
            "recall@10": 0.0330,
            "recall@20": 0.0555,
            "ndcg@10": 0.0167,
            "recall@200": 0.2041,
            "wall_s": 49.3,
        },
        "implicit-itemknn-cosine": {
            "recall@10": 0.0411,
            "recall@20": 0.0618,
            "ndcg@10": 0.0227,
            "recall@200": 0.1773,
            "wall_s": 13.5,
        },
        "recbole-bpr": {
            "recall@10": 0.0365,
            "recall@20": 0.0571,
            "ndcg@10": 0.0177,
            "recall@200": 0.1857,
            "wall_s": 209.1,
        },
        "recbole-gru4rec": {
            "recall@10": 0.0037,
            "recall@20": 0.0069,
            "ndcg@10": 0.0017,
            "recall@200": 0.0658,
            "wall_s": 377.3,
        },
        "recbole-sasrec": {
            "recall@10": 0.0272,
            "recall@20": 0.0410,
            "ndcg@10": 0.0146,
            "recall@200": 0.1595,
            "wall_s": 351.0,
        },
        # public full-ranking table (same 5-core data), not measured here; Hit@10 = Recall@10
        "public-sasrec": {"recall@10": 0.0848, "ndcg@10": 0.0432},
    },
    # rank stage (issue: Ranking and pre-ranking), single peer runs, same preprocessing
    ("criteo-sample", "given"): {
        "deepctr-lr": {"auc": 0.6936, "logloss": 0.4957, "wall_s": 5.9},
        "deepctr-fm": {"auc": 0.6902, "logloss": 0.4883, "wall_s": 6.2},
        "deepctr-deepfm": {"auc": 0.6760, "logloss": 0.5014, "wall_s": 5.7},
        "deepctr-dcn": {"auc": 0.7210, "logloss": 0.4760, "wall_s": 6.1},
        "deepctr-dcnv2": {"auc": 0.6890, "logloss": 0.4940, "wall_s": 6.3},
        "deepctr-autoint": {"auc": 0.7308, "logloss": 0.4701, "wall_s": 7.6},
        "deepctr-xdeepfm": {"auc": 0.7130, "logloss": 0.4995, "wall_s": 16.2},
        "deepctr-widedeep": {"auc": 0.6761, "logloss": 0.5016, "wall_s": 5.8},
        "rechub-deepfm": {"auc": 0.7110, "logloss": 0.4859, "wall_s": 7.0},
        "rechub-dcn": {"auc": 0.7215, "logloss": 0.4768, "wall_s": 5.3},
        "rechub-dcnv2": {"auc": 0.7099, "logloss": 0.4794, "wall_s": 6.2},
        "rechub-autoint": {"auc": 0.7117, "logloss": 0.4777, "wall_s": 8.2},
        "rechub-widedeep": {"auc": 0.7029, "logloss": 0.4851, "wall_s": 5.0},
    },
    ("avazu-sample", "given"): {
        "deepctr-lr": {"auc": 0.7245, "logloss": 0.4401, "wall_s": 5.7},
        "deepctr-fm": {"auc": 0.7402, "logloss": 0.4335, "wall_s": 5.7},
        "deepctr-deepfm": {"auc": 0.7488, "logloss": 0.4232, "wall_s": 5.3},
        "deepctr-dcn": {"auc": 0.7397, "logloss": 0.4263, "wall_s": 5.9},
        "deepctr-dcnv2": {"auc": 0.7471, "logloss": 0.4233, "wall_s": 6.4},
        "deepctr-autoint": {"auc": 0.7463, "logloss": 0.4263, "wall_s": 7.0},
        "deepctr-xdeepfm": {"auc": 0.7449, "logloss": 0.4251, "wall_s": 20.4},
        "deepctr-widedeep": {"auc": 0.7487, "logloss": 0.4210, "wall_s": 6.3},
        "rechub-deepfm": {"auc": 0.7080, "logloss": 0.4456, "wall_s": 5.4},
        "rechub-dcn": {"auc": 0.7015, "logloss": 0.4822, "wall_s": 5.3},
        "rechub-dcnv2": {"auc": 0.7079, "logloss": 0.4881, "wall_s": 6.0},
        "rechub-autoint": {"auc": 0.7121, "logloss": 0.4893, "wall_s": 9.8},
        "rechub-widedeep": {"auc": 0.7178, "logloss": 0.4429, "wall_s": 6.6},
    },
}

# Multi-task ranking issue: census-income (60/20/20, seed 2024), torch-rechub, 3 seeds;
# wall_s is the peer's total over its seeds (epochs per run in the table).
PEERS[("census-income", "split622")] = {
    "rechub-single-mlp": {"auc_income": 0.9457, "auc_income_std": 0.0011,
                          "auc_marital": 0.9946, "auc_marital_std": 0.0000, "wall_s": 151.3},
    "rechub-sharedbottom": {"auc_income": 0.9453, "auc_income_std": 0.0006,
                            "auc_marital": 0.9945, "auc_marital_std": 0.0001, "wall_s": 72.9},
    "rechub-mmoe": {"auc_income": 0.9449, "auc_income_std": 0.0006,
                    "auc_marital": 0.9945, "auc_marital_std": 0.0001, "wall_s": 108.1},
    "rechub-ple": {"auc_income": 0.9459, "auc_income_std": 0.0005,
                   "auc_marital": 0.9945, "auc_marital_std": 0.0001, "wall_s": 104.5},
}  # fmt: skip
