"""Task metrics: segmentation (confusion matrix, per-class IoU, mean IoU, pixel accuracy) and detection
(COCO mAP through pycocotools' COCOeval on the scenes written as COCO annotations)."""

from convlens.metrics.detection import coco_ground_truth, coco_map, detections_to_coco
from convlens.metrics.segmentation import SegmentationMeter, segmentation_confusion, segmentation_scores

__all__ = ["SegmentationMeter", "segmentation_confusion", "segmentation_scores", "coco_ground_truth",
           "detections_to_coco", "coco_map"]
