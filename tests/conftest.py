"""Shared fixtures. YOLO_OFFLINE stops ultralytics probing the network at import."""

import os

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
