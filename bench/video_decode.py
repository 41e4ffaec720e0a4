#!/usr/bin/python3
"""Frames per second delivered at the training resolution by dojo's clip pipeline, against the decode bound of this
machine and the loaders users write in Python, side by side in one run on the same files (issue 30).

The store: `dojo data synth` makes one (default: 6 scenes of 5 s, eight cameras at 640x480, 36 fps, keyframes every
36 frames), or --store names an existing one. Every camera stream is also extracted to a plain .mp4 for the peers.
Each loader delivers every frame of every camera, the eight cameras of a clip in step, resized to --size, as
float32 CHW tensors normalised to mean 0.45 / std 0.225; all with the same --threads:

  dojo     `dojo data bench STORE --size WxH --threads N` (decode threads, each decoding one keyframe interval of a
           clip's eight streams; swscale's area averaging to the training size; colour conversion and
           normalisation in one vectorised pass)
  ffmpeg   `ffmpeg -threads N -i CLIP -f null -` on every stream, one after another: decoding alone, no resize, no
           tensors (the raw decode bound the issue names; it pays a process start per stream, as a script calling it
           would)
  pyav     python3-av: per clip, eight containers decoded in step (codec threads N), frame.to_ndarray(width, height,
           format='rgb24') (swscale's bilinear filter), numpy normalisation
  opencv   python3-opencv: per clip, eight cv2.VideoCapture in step (cv2.setNumThreads(N)), cv2.resize INTER_LINEAR,
           BGR->RGB, numpy normalisation

Also printed: the CPU time a frame of the Python loaders (getrusage) and of dojo's raw decode, against what twice
OpenCV's rate leaves on the cores. Targets: dojo >= 90% of ffmpeg's rate and >= 2x each Python loader; `dojo data
synth` at least as fast as real time (eight cameras at 640x480, 36 fps). Then random access: for stores made with
several keyframe intervals, the frames dojo decodes to reach one random frame (at most one interval) and the time it
takes.

    bench/video_decode.py build/apps/dojo/dojo [--threads 2] [--size 224x168] [--scenes 6] [--store DIR]
                          [--intervals 12,36,72] [--json FILE]
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

MEAN, STD = 0.45, 0.225


def run(command, **kw):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kw)


def synth(dojo, out, scenes, interval, size="640x480", duration=5):
    """Makes a store; returns dojo's summary (real_time_factor: footage seconds made per second)."""
    out = run([dojo, "data", "synth", "--out", out, "--scenes", str(scenes), "--duration", str(duration), "--size",
               size, "--keyframe-interval", str(interval), "--json"])
    return json.loads(out.stdout)


def extract(store, into):
    """Every camera stream of the store as a file; returns {clip: [8 paths in rig order]}."""
    clips = {}
    for shard in sorted(glob.glob(os.path.join(store, "shard-*.tar"))):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".mp4"):
                    tar.extract(member, into)
                    clips.setdefault(member.name.split(".")[0], []).append(os.path.join(into, member.name))
    return clips


def ffmpeg_rate(clips, threads):
    frames, start = 0, time.perf_counter()
    for paths in clips.values():
        for path in paths:
            out = run(["ffmpeg", "-hide_banner", "-nostats", "-threads", str(threads), "-i", path, "-f", "null", "-"])
            # "frame=  180 fps=..." is the last progress line ffmpeg prints.
            frames += int(out.stderr.rsplit("frame=", 1)[1].split()[0])
    return frames / (time.perf_counter() - start)


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def normalise(rgb_hwc):
    return ((rgb_hwc.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)


def pyav_rate(clips, threads, width, height):
    import av
    frames, start = 0, time.perf_counter()
    for paths in clips.values():
        containers = [av.open(p) for p in paths]
        for c in containers:
            c.streams.video[0].thread_count = threads
            c.streams.video[0].thread_type = "AUTO"
        for step in zip(*[c.decode(video=0) for c in containers]):  # the cameras in step
            tensor = np.stack([normalise(f.to_ndarray(width=width, height=height, format="rgb24")) for f in step])
            frames += tensor.shape[0]
        for c in containers:
            c.close()
    return frames / (time.perf_counter() - start)


def opencv_rate(clips, threads, width, height):
    import cv2
    cv2.setNumThreads(threads)
    frames, start = 0, time.perf_counter()
    for paths in clips.values():
        captures = [cv2.VideoCapture(p) for p in paths]
        while True:
            images = []
            for capture in captures:
                ok, bgr = capture.read()
                if not ok:
                    break
                images.append(normalise(cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR),
                                                     cv2.COLOR_BGR2RGB)))
            if len(images) < len(captures):
                break
            frames += np.stack(images).shape[0]
        for capture in captures:
            capture.release()
    return frames / (time.perf_counter() - start)


def dojo_bench(dojo, store, threads, size, accesses=40):
    out = run([dojo, "data", "bench", store, "--size", size, "--threads", str(threads), "--accesses", str(accesses),
               "--json"])
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dojo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="224x168")
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--store")
    parser.add_argument("--intervals", default="12,36,72")
    parser.add_argument("--json")
    a = parser.parse_args()
    width, height = map(int, a.size.split("x"))
    work = tempfile.mkdtemp(prefix="dojo-video-bench-")
    store = a.store or os.path.join(work, "store")
    made = None
    if not a.store:
        print(f"making a store of {a.scenes} scenes in {store} ...", file=sys.stderr)
        made = synth(a.dojo, store, a.scenes, 36)
        print(f"synth: {made['clips']} clips of eight 640x480 cameras at 36 fps made at "
              f"{made['real_time_factor']:.2f}x real time (target >= 1: "
              f"{'met' if made['real_time_factor'] >= 1 else 'NOT met'})")
    clips = extract(store, os.path.join(work, "streams"))
    print(f"{len(clips)} clips x 8 cameras, {a.threads} threads, training size {a.size}; "
          f"machine: {os.cpu_count()} cores", flush=True)
    rates = {"ffmpeg": ffmpeg_rate(clips, a.threads)}
    cpu_ms = {}  # CPU time a frame of the in-process loaders, and how many cores they kept busy
    for name, loader in (("pyav", pyav_rate), ("opencv", opencv_rate)):
        cpu_before, wall_before = cpu_seconds(), time.perf_counter()
        rates[name] = loader(clips, a.threads, width, height)
        cpu, wall = cpu_seconds() - cpu_before, time.perf_counter() - wall_before
        cpu_ms[name] = 1e3 * cpu / (rates[name] * wall)
        print(f"{name}: {cpu_ms[name]:.3f} ms of CPU a frame, {cpu / wall:.2f} cores busy", flush=True)
    bench = dojo_bench(a.dojo, store, a.threads, a.size)
    rates["dojo"] = bench["pipeline_frames_per_s"]
    targets = {"ffmpeg": 0.9, "pyav": 2.0, "opencv": 2.0}
    print(f"{'loader':<8} {'frames/s':>9}  {'dojo / it':>9}  target")
    for name in ["dojo", "ffmpeg", "pyav", "opencv"]:
        ratio = rates["dojo"] / rates[name]
        target = f">= {targets[name]:.1f}  {'met' if ratio >= targets[name] else 'NOT met'}" if name in targets else ""
        print(f"{name:<8} {rates[name]:>9.0f}  {ratio:>9.2f}  {target}")
    print(f"(dojo's in-process raw decode of the same streams: {bench['raw_decode_frames_per_s']:.0f} frames/s, "
          f"{1e3 * a.threads / bench['raw_decode_frames_per_s']:.3f} ms of CPU a frame on {a.threads} busy cores; "
          f"twice OpenCV's rate leaves {1e3 * a.threads / (2 * rates['opencv']):.3f})")
    access = []
    for interval in [int(i) for i in a.intervals.split(",")]:
        small = os.path.join(work, f"interval-{interval}")
        synth(a.dojo, small, 2, interval)
        r = dojo_bench(a.dojo, small, a.threads, a.size, accesses=60)["random_access"]
        access.append({"keyframe_interval": interval, **r})
        print(f"random access, keyframe interval {interval:>3}: {r['mean_frames_decoded']:.1f} frames decoded on "
              f"average, {r['max_frames_decoded']} at most ({'within' if r['max_frames_decoded'] <= interval else 'OVER'}"
              f" one interval), {r['mean_ms']:.1f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rates": rates, "cpu_ms_per_frame": cpu_ms, "random_access": access, "threads": a.threads,
                       "size": a.size, "synth": made}, f, indent=2)


if __name__ == "__main__":
    main()
