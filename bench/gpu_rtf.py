"""Issue 6 item 6: the Transcriber's real-time factor on a GPU, in one prepared run.

Transcribes ~N minutes of speech (the committed clip, repeated) twice on the chosen
device: once with the Transcriber's SpeechRecognizer in this process, once end to end
through the service on local Ray with the Transcriber replica holding the GPU. Prints
the device, compute type, model and both real-time factors (seconds of compute per
second of audio; lower is faster).

    .venv/bin/python -m bench.gpu_rtf [--model base|NAME|PATH] [--device auto|cuda|cpu] [--minutes 4]

Offline machines only have the bundled `base` model; a larger one must be on disk
(`--model /path/to/faster-whisper-large-v3`). On a CPU-only machine `--device cpu`
checks the script itself.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from actors.speech.recognizer import SpeechRecognizer
from actors.speech.settings import AsrSettings
from bench.service_bench import Bench, long_speech
from tests.support.video_site import SPEECH_EN_AUDIO

CLIP_SECONDS = 14.4  # the committed clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    asr = {"model": args.model, "device": args.device, "batch_size": args.batch_size}

    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        try:
            audio = long_speech(bench.root / "long.m4a", repeats=max(1, round(args.minutes * 60 / CLIP_SECONDS)))
            recognizer = SpeechRecognizer(AsrSettings(**asr), bench.data_dir)
            recognizer.transcribe(SPEECH_EN_AUDIO)  # first-call set-up, as a warm replica has done
            started = time.perf_counter()
            transcript = recognizer.transcribe(audio)
            bare = time.perf_counter() - started
            duration = transcript.duration
            assert duration, "the long clip decoded to nothing"
            on_gpu = recognizer.device == "cuda"
            print(
                f"model {args.model} on {recognizer.device}/{recognizer.compute_type}, "
                f"{duration:.0f} s of speech, {len(transcript.segments)} segments"
            )
            print(f"SpeechRecognizer: {bare:.1f} s, RTF {bare / duration:.4f}")
            del recognizer  # frees the GPU memory for the replica

            page = bench.site.add_video("gpu-rtf", audio, title="RTF")
            replica = {"num_cpus": 1, "num_gpus": 1} if on_gpu else {"num_cpus": 2}
            service = bench.deploy(
                {"ray_actor_options": replica, "autoscaling_config": {"min_replicas": 1, "max_replicas": 1}}, asr=asr
            )
            started = time.perf_counter()
            task_id = service.submit(page).json()["task_id"]
            view = service.wait_finished([task_id], timeout=1800)[task_id]
            through_service = time.perf_counter() - started
            bench.undeploy()
            assert view["status"] == "done", view
            print(
                f"through the Transcriber (submit -> delivered): {through_service:.1f} s, "
                f"RTF {through_service / duration:.4f}"
            )
        finally:
            bench.close()


if __name__ == "__main__":
    main()
