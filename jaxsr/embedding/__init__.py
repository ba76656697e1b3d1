"""Does DASR's degradation encoder separate degradations rather than photos?

DASR (Wang et al., CVPR 2021) claims its contrastively trained encoder represents the
blur (and noise) of an LR image, not its content (Sec. 4.2, Fig. 4: embeddings cluster
by degradation). This package measures that on photos the encoder never saw:

* :mod:`.analysis` — degraded views of photos, embeddings, leave-one-photo-out
  nearest-centroid / k-NN accuracy of the setting, silhouettes, PCA / t-SNE;
* :mod:`.plot` — the scatter plots (Pillow);
* :mod:`.study` — the whole study: split a folder by photo, train DASR's stage 1,
  embed the held-out photos, score, plot (``python -m jaxsr.embedding``).

``python -m jaxsr.evaluate --embedding_plot=PATH`` scores a trained model the same way
on the evaluation images.
"""

from jaxsr.embedding.analysis import nearest_centroid_accuracy, separation_scores
from jaxsr.embedding.study import StudyOptions, embed_fn, run_study, score_and_plot

__all__ = [
    "StudyOptions",
    "embed_fn",
    "nearest_centroid_accuracy",
    "run_study",
    "score_and_plot",
    "separation_scores",
]
