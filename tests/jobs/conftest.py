"""Real parts for the job tests: a moto S3 server (HTTP, S3 protocol) and a local Ray cluster with logical GPUs."""

import os

import pytest


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # Environment for every process (Ray workers inherit it from the raylet this process starts).
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url})
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=url)
    fs.mkdir("fusedet")
    yield url
    server.stop()


@pytest.fixture(scope="module")
def ray_cluster(s3_endpoint):
    """A local Ray for one test module: 4 CPUs, 2 logical GPUs (GPU-pinned actors schedule on CPU CI)."""
    import ray

    # No dashboard: nothing here submits jobs to it (the README test runs `ray job submit` on its own cluster), and
    # its processes cost seconds of the two CPUs of CI per module.
    ctx = ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False, logging_level="WARNING")
    yield ctx
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(s3_endpoint):
    """The fault-injection modules' paired archive in S3: 3 clips of 4 s, 6 chunks of 2 s."""
    from fusion.data.generate import ArchiveSpec, write_archive

    url = "s3://fusedet/rel-archive"
    write_archive(ArchiveSpec(out=url, clips=3, seconds=4.0, fps=25, seed=31, rgb_size=(320, 256), ir_size=(160, 128)))
    return url
