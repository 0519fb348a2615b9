"""The job's configuration: one frozen dataclass per concern, loaded from YAML with `key=value` overrides.

Every default has a comment; unknown keys are rejected by name (see `fusion.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fusion.config import ConfigError


@dataclass(frozen=True)
class InputConfig:
    archive: str = "demo-output/archive"  # fsspec URL of the archive root (file://, s3://, gs://, local path)
    manifest: str = "manifest.csv"  # CSV/Parquet (video_id, camera_id, rgb_uri, ir_uri, start_time), relative to
    #                                 the archive or a full URL; "" = pair files by naming convention instead
    rgb_suffix: str = "_rgb.mp4"  # naming convention: <video_id><rgb_suffix> pairs with <video_id><ir_suffix>
    ir_suffix: str = "_ir.mp4"
    storage_options: dict[str, str] = field(default_factory=dict)  # passed to fsspec (e.g. endpoint_url for S3)


@dataclass(frozen=True)
class ChunkConfig:
    seconds: float = 4.0  # target chunk length; boundaries snap to RGB keyframes (no decode before a seek)

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ConfigError(f"chunk.seconds={self.seconds} must be > 0")


@dataclass(frozen=True)
class EngineConfig:
    backend: Literal["onnxruntime", "tensorrt", "torch"] = "onnxruntime"  # onnxruntime runs anywhere (CPU)
    fused_model: str = "models/mid_n.onnx"  # .onnx (onnxruntime/tensorrt) or .pt (torch)
    rgb_model: str = "models/rgb_n.onnx"  # used in bright scenes by the adaptive policy
    ir_model: str = "models/ir_n.onnx"  # used in dark scenes by the adaptive policy
    precision: Literal["fp32", "fp16", "int8"] = "fp32"  # torch: fp32|fp16; tensorrt: from the ONNX graph
    size: tuple[int, int] = (640, 512)  # model input (W, H)
    rgb_size: tuple[int, int] = (640, 512)  # RGB-only input (W, H): smaller is cheaper in bright scenes
    conf: float = 0.25  # score threshold
    iou: float = 0.6  # NMS IoU threshold
    batch: int = 16  # frames per engine call
    device: str = "auto"  # auto: cuda when the actor has a GPU, else cpu
    threads: int = 0  # onnxruntime intra-op threads per actor (0 = its default)
    engine_cache: str = ""  # tensorrt: engine cache folder on each node ("" = ~/.cache/fusedet/engines)

    def __post_init__(self) -> None:
        if not 0 < self.conf < 1 or not 0 < self.iou < 1:
            raise ConfigError("engine.conf and engine.iou must be in (0, 1)")
        if any(v % 32 for v in (*self.size, *self.rgb_size)):
            raise ConfigError(f"engine.size={self.size} / rgb_size={self.rgb_size}: multiples of 32")
        if self.batch < 1:
            raise ConfigError("engine.batch must be >= 1")


@dataclass(frozen=True)
class ModalityConfig:
    mode: Literal["adaptive", "fused", "rgb", "ir"] = "adaptive"  # fixed modes force one engine for every frame
    dark_below: float = 0.14  # smoothed brightness (0..1) under which the IR-only engine runs (night: ~0.05-0.11)
    bright_above: float = 0.29  # smoothed brightness above which the RGB-only engine may run (day: ~0.32-0.42)
    min_contrast_rgb: float = 0.28  # ...if the p90-p10 luminance spread is at least this (fog is bright but flat)
    hysteresis: float = 0.02  # dead band: leave a mode only when brightness is this far past its threshold
    min_dwell_s: float = 2.0  # stay at least this long in a mode before switching again
    smoothing_s: float = 1.0  # time constant of the exponential brightness smoothing

    def __post_init__(self) -> None:
        if not 0 <= self.dark_below < self.bright_above <= 1:
            raise ConfigError("modality: need 0 <= dark_below < bright_above <= 1")
        if self.hysteresis < 0 or self.min_dwell_s < 0 or self.smoothing_s < 0:
            raise ConfigError("modality: hysteresis, min_dwell_s and smoothing_s must be >= 0")
        if self.dark_below + self.hysteresis >= self.bright_above - self.hysteresis:
            raise ConfigError("modality: the dead bands of dark_below and bright_above overlap")


@dataclass(frozen=True)
class ClusterConfig:
    address: str = ""  # "" = start a local Ray; "auto" = join the running cluster (what `ray job submit` gives)
    actors: int = 2  # actor pool size (one per GPU on a GPU cluster)
    gpus_per_actor: float = 0.0  # 1 on GPU clusters: each actor pins one GPU
    cpus_per_actor: float = 1.0
    local_cpus: int = 0  # local Ray only: CPUs to declare (0 = all)
    local_gpus: int = 0  # local Ray only: logical GPUs to declare (lets GPU-pinned actors schedule on CPU)
    # System failures only (an actor's process or node dies: OOM, preemption): Ray restarts the actor up to
    # max_restarts times and re-runs its in-flight chunk up to max_task_retries times, at once (no backoff: the
    # chunk is rescheduled on a live actor). Bad inputs are never retried: they become error rows.
    max_restarts: int = 3
    max_task_retries: int = 3


@dataclass(frozen=True)
class OutputConfig:
    path: str = "demo-output/detections"  # fsspec URL of the output root
    overwrite: bool = False  # redo chunks whose valid output already exists
    run_id: str = ""  # "" = a new UTC timestamp id per run
    storage_options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobConfig:
    input: InputConfig = field(default_factory=InputConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    modality: ModalityConfig = field(default_factory=ModalityConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
