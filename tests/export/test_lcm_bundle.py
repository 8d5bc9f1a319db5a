"""An LCM bundle: the model's LCM LoRA fused into a one-row U-Net, LCMScheduler named in the
manifest, and a phone loop whose golden 4-step try-on the converted programs reproduce."""

import numpy as np
import pytest

from tryon_lab.export.bundle import ExportOptions, export_bundle
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.verify import read_manifest, verify_bundle


def test_export_options_know_the_sampler_and_its_guidance():
    assert ExportOptions().guidance_scale == 4.0 and ExportOptions(sampler="lcm").guidance_scale == 1.0
    with pytest.raises(ExportInputError, match="sampler"):
        ExportOptions(sampler="plms")
    with pytest.raises(ExportInputError, match="without guidance"):
        ExportOptions(sampler="lcm", guidance_scale=4.0)


def test_a_model_without_an_lcm_lora_is_refused_before_any_conversion(tiny_pipeline_dir, tmp_path):
    with pytest.raises(ExportInputError, match="tryon-lab distill"):
        export_bundle(tiny_pipeline_dir, tmp_path / "bundle", ExportOptions(sampler="lcm", targets=("coreml",)),
                      log=lambda _: None)
    assert not (tmp_path / "bundle").exists()


@pytest.mark.slow
def test_a_dtc_lcm_bundle_runs_one_row_of_reference_and_hint_and_verifies(tiny_pipeline, tmp_path):
    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_dtc_pipeline
    from tryon_lab.training.distill import DistillSettings, distill_lcm, save_lcm

    folder = tmp_path / "dtc"
    DTCPipeline.from_base(tiny_pipeline, "film").save_pretrained(folder)
    with pytest.raises(ExportInputError, match="distill --base"):  # no LCM LoRA yet
        export_bundle(folder, tmp_path / "bundle", ExportOptions(sampler="lcm", targets=("coreml",)),
                      log=lambda _: None)
    settings = DistillSettings(steps=2, batch_size=2, dataset_size=4, rank=4, checkpoint_every=2, warmup_steps=0,
                               learning_rate=1e-2, w_min=5.0, w_max=5.0)
    pipe, _ = distill_lcm(load_dtc_pipeline(folder, device="cpu"), tmp_path / "run", settings)
    save_lcm(pipe, folder)
    out = export_bundle(folder, tmp_path / "bundle", ExportOptions(sampler="lcm", bits="16", targets=("coreml",),
                                                                   steps=4), log=lambda _: None)
    manifest = read_manifest(out)
    assert manifest.scheduler["_class_name"] == "LCMScheduler" and manifest.runtime.unet_batch == 1
    assert manifest.runtime.conditioning == "reference" and manifest.golden.guidance_scale == 1.0
    for name in ("ImageEncoder", "HintEncoder", "Unet"):
        assert manifest.components[name].spec.inputs[0].shape[0] == 1 or name == "ImageEncoder"
    assert manifest.components["ImageEncoder"].spec.outputs[0].shape[0] == 1  # the reference's tokens alone
    report = verify_bundle(out, backend="mil")
    assert report.passed, report.table()


@pytest.mark.slow
def test_an_lcm_bundle_runs_one_row_without_guidance_and_verifies(tiny_lcm_pipeline_dir, tmp_path):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.pipelines.samplers import load_lcm, use_sampler

    out = export_bundle(tiny_lcm_pipeline_dir, tmp_path / "bundle",
                        ExportOptions(sampler="lcm", bits="16", targets=("coreml",), steps=4), log=lambda _: None)
    manifest = read_manifest(out)
    assert manifest.scheduler["_class_name"] == "LCMScheduler" and manifest.runtime.unet_batch == 1
    assert manifest.golden.steps == 4 and manifest.golden.guidance_scale == 1.0
    assert manifest.components["Unet"].spec.inputs[0].shape[0] == 1
    report = verify_bundle(out, backend="mil")
    assert report.passed, report.table()

    # the fused one-row program computes what the pipeline computes with its adapter switched on
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.export.golden import load_arrays
    from tryon_lab.export.runner import TorchRunner

    pipe = load_inpaint_pipeline(tiny_lcm_pipeline_dir, device="cpu")
    load_lcm(pipe, tiny_lcm_pipeline_dir)
    use_sampler(pipe, "lcm")
    adapter_unet = TorchRunner(pipeline_components(pipe)["Unet"])
    golden = load_arrays(out / manifest.components["Unet"].golden)
    inputs = {key.removeprefix("input."): value for key, value in golden.items() if key.startswith("input.")}
    np.testing.assert_allclose(adapter_unet.predict(inputs)["noise_pred"], golden["output.noise_pred"],
                               rtol=1e-4, atol=1e-4)
