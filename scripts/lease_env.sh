# Sourced by the GPU lease scripts: a scratch folder of their own (mktemp, gone with the machine),
# the wheels in .whl/ installed there (packages the GPU machine lacks or has in another version),
# PYTHONPATH and the build folder pointing at it, and the GPU named in "$out/gpu.txt".
scratch=$(mktemp -d)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TRYON_LAB_BUILD_DIR="$scratch/build"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$scratch/site" .whl/*.whl || exit 1
  export PYTHONPATH="$scratch/site:$PWD"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
