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
    seconds: float = 4.0  # target chunk length; boundaries snap to RGB keyframes from the container index
    # A re-run must cut videos the same way (output files are keyed by frame range); a video already processed
    # with other chunk settings is refused (an error row) unless output.overwrite=true replaces its outputs.

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ConfigError(f"chunk.seconds={self.seconds} must be > 0")


@dataclass(frozen=True)
class DecodeConfig:
    backend: Literal["auto", "nvdec", "pyav"] = "auto"  # auto: NVDEC where the actor has a GPU and PyNvVideoCodec
    #                                                    loads, else PyAV (CPU); the choice is logged per actor
    threads: int = 0  # PyAV: FFmpeg decode threads per stream (0 = FFmpeg decides)
    pair_tolerance_s: float = 0.0  # an RGB and an IR frame pair when their times (each relative to its own
    #                                stream's start) differ by at most this; 0 = half an RGB frame period
    high_priority: bool = True  # GPU: decoder and chunk streams run before the engine's (see decode_stream)
    nvdec_rgb: Literal["nv12", "rgbp"] = "nv12"  # NVDEC's RGB hand-over: NV12, converted after the letterbox
    #   downscale (fusion.data.letterbox), or planar RGB converted by the library at full resolution (2,260 vs
    #   1,768 pairs/s, same job and run on an H200: README, Benchmarks)

    def __post_init__(self) -> None:
        if self.threads < 0 or self.pair_tolerance_s < 0:
            raise ConfigError("decode.threads and decode.pair_tolerance_s must be >= 0")


@dataclass(frozen=True)
class RetryConfig:
    # Transient storage errors (connection refused/reset, timeouts, throttling, 5xx) on any read or write are
    # retried: `attempts` tries in all, waiting backoff_s, 2*backoff_s, ... capped at max_backoff_s. The default
    # rides out about 90 s of outage. Missing files and denied access are not retried: they are errors at once.
    attempts: int = 8
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise ConfigError("storage.attempts >= 1 and 0 <= storage.backoff_s <= storage.max_backoff_s")


@dataclass(frozen=True)
class EngineConfig:
    backend: Literal["auto", "onnxruntime", "tensorrt", "torch"] = "onnxruntime"  # auto: TensorRT where its
    #        runtime accepts the GPU, torch on other GPUs, ONNX Runtime on the CPU; onnxruntime runs anywhere
    fused_model: str = "models/mid_n.onnx"  # a model name: .onnx for onnxruntime/tensorrt, the .pt beside it for torch
    rgb_model: str = "models/rgb_n.onnx"  # used in bright scenes by the adaptive policy
    ir_model: str = "models/ir_n.onnx"  # used in dark scenes by the adaptive policy
    precision: Literal["fp32", "fp16", "int8"] = "fp32"  # the same on every backend: fp16 = fp16 torch or an fp16
    #                                                      ONNX graph for TensorRT; int8 = a Q/DQ graph
    compile: bool = False  # torch: torch.compile + CUDA graphs; tensorrt: CUDA graph replay (batches padded)
    size: tuple[int, int] = (640, 512)  # model input (W, H)
    rgb_size: tuple[int, int] = (640, 512)  # RGB-only input (W, H): smaller is cheaper in bright scenes
    conf: float = 0.25  # score threshold
    iou: float = 0.6  # NMS IoU threshold
    batch: int = 16  # frames per engine call (fixed when compiled: the last batch is padded)
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
    # adaptive: per brightness bin, the cheaper RGB-only or IR-only engine runs only where the models' own validated
    # accuracy (metadata stamped by benchmarks/eval_adaptive.py) is within max_loss of the fused model's in that bin;
    # a model without that metadata is never chosen over fused (the run log says which bins route where)
    max_loss: float = 0.005  # mAP50 (0..1) a cheaper engine may lose against fused in a brightness bin (0.5 pt)
    min_frames: int = 300  # validation frames a bin needs before its figures are trusted (fewer did not hold up on
    #                        unseen clips: benchmarks/results/adaptive.json)
    # Route by figures validated on generated scenes (the shipped models' own stamps)? Off: they hold on generated
    # streets, but the shipped RGB stream has not been shown to find real people (README, real photos), so on real
    # footage a route proven only there could lose what fused finds. Figures stamped from your own labelled pairs
    # (eval_adaptive.py val_data=) are always used.
    trust_generated: bool = False
    hysteresis: float = 0.02  # dead band: leave a mode only when brightness is this far past a bin edge
    min_dwell_s: float = 2.0  # stay at least this long in a mode before switching again
    smoothing_s: float = 1.0  # time constant of the exponential brightness smoothing
    camera_offsets: dict[str, float] = field(default_factory=dict)  # per camera id: added to its brightness before
    #                                 routing (a lit street reads darker than the scene is: give it +0.05)

    def __post_init__(self) -> None:
        if not 0 <= self.max_loss < 1 or self.min_frames < 0:
            raise ConfigError("modality: need 0 <= max_loss < 1 and min_frames >= 0")
        if self.hysteresis < 0 or self.min_dwell_s < 0 or self.smoothing_s < 0:
            raise ConfigError("modality: hysteresis, min_dwell_s and smoothing_s must be >= 0")


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = True  # ByteTrack (ultralytics) per chunk + stitching across chunks: track_id on every detection
    high: float = 0.25  # detections at or above this score are matched first (ByteTrack's track_high_thresh)
    low: float = 0.1  # ...then those above this recover lost tracks (track_low_thresh)
    new: float = 0.25  # a detection nobody matched starts a track at or above this score (new_track_thresh)
    buffer_s: float = 1.0  # a lost track is kept this long for re-identification (occlusion)
    match: float = 0.8  # association cost threshold (1 - IoU, fused with the score)
    overlap_s: float = 1.0  # chunks are also run over this much of the previous chunk, where tracks are linked
    stitch_iou: float = 0.5  # two chunks' tracks are one object when their boxes overlap this much on average
    # ByteTrack is pure Python per frame: in a GPU actor it held the GIL a third of the time and starved the engine
    # thread (H100 profile), so it runs in this many Ray actors (processes) per actor; 0 = in the chunk's own
    # thread; -1 = 4 on GPU actors, 0 on CPU actors (whose cores the engine uses).
    processes: int = -1

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high <= 1 or not 0 <= self.new <= 1 or not 0 < self.match <= 1:
            raise ConfigError("tracking: need 0 <= low <= high <= 1, 0 <= new <= 1, 0 < match <= 1")
        if self.buffer_s <= 0 or self.overlap_s < 0 or not 0 < self.stitch_iou <= 1:
            raise ConfigError("tracking: buffer_s > 0, overlap_s >= 0, 0 < stitch_iou <= 1")
        if self.processes < -1:
            raise ConfigError(f"tracking.processes={self.processes}: -1 (auto), 0 (in the chunk thread) or more")


@dataclass(frozen=True)
class ClusterConfig:
    address: str = ""  # "" = start a local Ray; "auto" = join the running cluster (what `ray job submit` gives)
    actors: int = 2  # actor pool size (the most actors when min_actors is set)
    min_actors: int = 0  # > 0: the pool autoscales between min_actors and actors (new GPU nodes get actors)
    gpus_per_actor: float = 0.0  # 1 = each actor pins a GPU; 0.5 = two actors share one (more NVDEC sessions)
    cpus_per_actor: float = 1.0
    memory_gb: float = 3.0  # memory each actor declares to the scheduler (engines + in-flight frames)
    chunks_in_flight: int = 2  # chunks one actor works on at once: decoders run ahead while the engine is busy
    # chunks of one actor decoding at once (0 = every chunk in flight). With more chunks in flight than this, the
    # others wait for the engine, track and write their Parquet while the decoders stay busy.
    decoding_chunks: int = 0
    local_cpus: int = 0  # local Ray only: CPUs to declare (0 = all)
    local_gpus: int = 0  # local Ray only: logical GPUs to declare (lets GPU-pinned actors schedule on CPU)
    # System failures (an actor's process or node dies: OOM, preemption, a decoder crash): Ray Data restarts the
    # actor and re-runs its in-flight chunks on a live actor. A chunk that was started this many times in one run
    # without finishing is recorded as failed (ActorDied) instead of killing actors forever.
    max_chunk_attempts: int = 3

    def __post_init__(self) -> None:
        if self.actors < 1:
            raise ConfigError(f"cluster.actors={self.actors}: need at least 1 actor")
        if not 0 <= self.min_actors <= self.actors:
            raise ConfigError(f"cluster.min_actors={self.min_actors}: need 0 <= min_actors <= actors")
        if self.max_chunk_attempts < 1:
            raise ConfigError("cluster.max_chunk_attempts must be >= 1")
        if self.decoding_chunks < 0:
            raise ConfigError(f"cluster.decoding_chunks={self.decoding_chunks}: 0 (all in flight) or more")
        if self.chunks_in_flight < 1 or self.gpus_per_actor < 0 or self.cpus_per_actor <= 0 or self.memory_gb < 0:
            raise ConfigError("cluster: chunks_in_flight >= 1, gpus_per_actor >= 0, cpus_per_actor > 0, "
                              "memory_gb >= 0")


@dataclass(frozen=True)
class OutputConfig:
    path: str = "demo-output/detections"  # fsspec URL of the output root
    overwrite: bool = False  # redo chunks whose valid output already exists (a video's old outputs are removed)
    run_id: str = ""  # "" = a new unique id per run (UTC time + random suffix)
    storage_options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobConfig:
    input: InputConfig = field(default_factory=InputConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    storage: RetryConfig = field(default_factory=RetryConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    modality: ModalityConfig = field(default_factory=ModalityConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
