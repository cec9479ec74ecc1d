"""Image retrieval by CNN features: the second of the course's four uses of CNNs.

    from convlens import retrieval
    idx = retrieval.build_index("runs/lenet5", "mnist", layer="fc2:input")   # embed + index (faiss)
    idx.save("index/"); idx = retrieval.load_index("index/")
    hits = retrieval.search_images(idx, images, k=10)      # the query's nearest training images
    retrieval.ranking_metrics(q_feats, db_feats, q_labels, db_labels)   # mAP, precision@k by label

`convlens.features.extract` computes the vectors; `FeatureIndex` wraps a faiss index (exact inner
product, HNSW or IVF) with its metadata as JSON; `metrics` scores rankings by class label.
"""

from .build import build_index, check_model, index_model, load_index, neighbours, search_images
from .index import EXACT_MAX, FeatureIndex, IndexConfig, RetrievalError, as_vectors
from .metrics import average_precision, precision_at_k, ranking_metrics, recall_at_k, similarity_ranking

__all__ = [
    "FeatureIndex", "IndexConfig", "RetrievalError", "EXACT_MAX", "as_vectors", "build_index", "load_index",
    "search_images", "check_model", "index_model", "neighbours", "average_precision", "precision_at_k",
    "ranking_metrics", "recall_at_k", "similarity_ranking",
]
