#!/usr/bin/env bash
# Installs the Debian packages OpenDojo builds and tests with. Idempotent: when every package is present it
# changes nothing and asks apt nothing. Run as root, or as a user with sudo.
set -euo pipefail

packages=(
  g++ cmake ninja-build make pkg-config   # toolchain (C++20, CMake + Ninja; make runs the entry points)
  clang                                   # the libFuzzer build of scripts/fuzz.sh
  libcli11-dev                            # the dojo CLI
  libfmt-dev                              # text formatting
  nlohmann-json3-dev                      # --json output
  libgtest-dev libgmock-dev               # tests
  libbenchmark-dev                        # bench/
  zlib1g-dev                              # reading .gz datasets
  dataset-fashion-mnist                   # the training data of `dojo train` and its tests
  libonnx-dev libprotobuf-dev             # ONNX import/export
  libdnnl-dev                             # oneDNN: the fast convolution and matmul kernels of the runtime
  ocl-icd-opencl-dev                      # oneDNN's CMake config requires OpenCL (Debian builds it with the GPU runtime)
  libtomlplusplus-dev                     # machine descriptions (machines/*.toml)
  libsimgrid-dev                          # the simulator's network: flow-level collectives
  libopenmpi-dev openmpi-bin              # data-parallel training across processes and hosts (mpirun)
  iproute2                                # tests: two ranks in two network namespaces (ip netns)
  python3-torch python3-torchvision python3-onnx python3-numpy  # models/*.py: PyTorch export and round-trip checks
  libtcmalloc-minimal4                    # bench/train_vs_pytorch.py runs PyTorch with tcmalloc, as it should
  libopenblas0-pthread                    # ... and on an optimised BLAS (Debian's PyTorch calls whatever libblas.so.3 is)
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev  # the fleet clip store: H.264/HEVC in MP4 (FFmpeg 5.1)
  libsqlite3-dev                          # ... its manifest
  ffmpeg                                  # tests and bench/video_decode.py: ffprobe reads the store, ffmpeg is the peer
  python3-av python3-opencv               # bench/video_decode.py: the Python loaders users write
  libcpp-httplib-dev libsodium-dev        # dojo serve: the HTTP/JSON API, hashed API tokens (SQLite: above)
  chromium chromium-driver python3-selenium  # tests: the service's dashboard in a real browser
  slurm-wlm munge slurmdbd mariadb-server  # dojo serve --scheduler slurm, and its test's one-node cluster (QOS:
                                          # Slurm's accounting database)
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "setup: these packages are missing and this is not root: ${missing[*]}" >&2
    echo "setup: install them as root with: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
