"""MLPerf Inference accuracy metrics, computed as MLPerf's accuracy scripts compute them.

One module per task: :mod:`.classification` (top-1), :mod:`.detection` (RetinaNet payload, COCO
mAP), :mod:`.squad` (BERT answers, exact match, F1), :mod:`.segmentation` (KiTS19 DICE),
:mod:`.speech` (WER), :mod:`.ranking` (DLRM AUC), :mod:`.text` (ROUGE, output lengths) and
:mod:`.stats` (confidence intervals); :mod:`.registry` describes every metric name a manifest
may use. Optional libraries (pycocotools, scikit-learn, rouge-score, nltk) are imported only by
the function that needs them.
"""
