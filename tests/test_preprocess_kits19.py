"""kits19-3dunet recipe: generated NIfTI cases against the reference's definition, recomputed here.

The expected arrays are computed in this file from the steps of the reference's ``preprocess.py``
(nibabel load, ``scipy.ndimage.zoom`` by spacing / target, clip, normalise, edge pad to the ROI,
crop/pad to the stride grid), written independently of :mod:`preprocess.kits19`. A small ROI
(8^3, stride 4) keeps the volumes tiny. The pickle's bytes are compared with NumPy 1.26's (the
md5s below were measured with numpy 1.26.4 on Python 3.11) and, when real KiTS19 data is present
(``KITS19_DATA_DIR``, a kits19 ``data/`` folder), with the published md5s.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from scipy import ndimage

from preprocess.kits19 import (
    Kits19Config,
    check_md5s,
    preprocess_case,
    read_reference_pickle,
    write_reference_pickle,
)
from provision import api
from provision.config import Settings
from provision.errors import IntegrityError

ROI = 8
STRIDE = 4
PARAMS = "roi_shape = [8, 8, 8]\noverlap = 0.5\n"  # the manifest's other parameters are the recipe defaults
# case name -> (shape, spacing as written in the header): one resampled, one at the target spacing
CASES: dict[str, tuple[tuple[int, int, int], tuple[float, float, float]]] = {
    "case_00001": ((5, 13, 11), (1.8, 1.0, 1.45)),  # zoom ~(1.13, 0.83, 1.21) -> (6, 11, 13): edge pad, pad, crop
    "case_00002": ((6, 14, 18), (1.6, 1.2, 1.2)),  # float32 header values differ from 1.6/1.2: still zoomed
}


def _volumes(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(-300, 500, size=shape).astype(np.int16)
    label = rng.integers(0, 3, size=shape).astype(np.uint8)
    label[0] = 2  # a labelled border: the edge padding repeats it
    return image, label


def write_case(root: Path, name: str, image: np.ndarray, label: np.ndarray, spacing: tuple[float, ...]) -> None:
    """``root/name/imaging.nii.gz`` and ``segmentation.nii.gz`` with ``spacing`` in the header."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-spacing[2], -spacing[1], spacing[0], 1.0])[[2, 1, 0, 3]]  # KiTS19-like axis order
    for array, file in ((image, "imaging.nii.gz"), (label, "segmentation.nii.gz")):
        nii = nibabel.Nifti1Image(array, affine)
        nii.header.set_zooms(spacing)
        nibabel.save(nii, folder / file)


def expected_case(case_dir: Path, roi: int = ROI, stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """The reference's preprocessing of one case, recomputed from its definition."""
    img = nibabel.load(case_dir / "imaging.nii.gz")
    seg = nibabel.load(case_dir / "segmentation.nii.gz")
    spacing = img.header["pixdim"][1:4].tolist()
    image = img.get_fdata().astype(np.float32)
    label = seg.get_fdata().astype(np.uint8)
    if spacing != [1.6, 1.2, 1.2]:
        factor = np.array(spacing) / np.array([1.6, 1.2, 1.2])
        image = ndimage.zoom(image, factor, order=1, mode="constant", cval=image.min(), grid_mode=False)
        label = ndimage.zoom(label, factor, order=0, mode="constant", cval=label.min(), grid_mode=False)
    image = ((np.clip(image, -79.0, 304.0) - np.float32(101.0)) / np.float32(76.9)).astype(np.float32)
    for axis in range(3):
        n = image.shape[axis]
        if n < roi:  # edge-pad to the ROI, the smaller half first
            before = (roi - n) // 2
            widths = [(0, 0)] * 3
            widths[axis] = (before, roi - n - before)
            image = np.pad(image, widths, mode="edge")
            label = np.pad(label, widths, mode="edge")
    for axis in range(3):
        n = image.shape[axis]
        r = n % stride
        if 0 < r < stride // 2:  # crop the small remainder
            keep = np.arange(r // 2, n - (r - r // 2))
            image = np.take(image, keep, axis=axis)
            label = np.take(label, keep, axis=axis)
        n = image.shape[axis]
        target = -(-n // stride) * stride
        if target < roi:
            target += stride
        before = (target - n) // 2
        widths = [(0, 0)] * 3
        widths[axis] = (before, target - n - before)
        image = np.pad(image, widths, constant_values=np.float32(-2.2))
        label = np.pad(label, widths, constant_values=0)
    return image[None].astype(np.float32), label[None].astype(np.uint8)


def numpy1_pickle(image: np.ndarray, label: np.ndarray) -> bytes:
    """``pickle.dumps([image, label], protocol=4)`` as NumPy 1.x writes it (its reconstructor's module name)."""
    data = pickle.dumps([image, label], protocol=4)
    if b"numpy._core.multiarray" not in data:
        return data  # NumPy 1.x itself
    frame = int.from_bytes(data[3:11], "little")
    renamed = data[11 : 11 + frame].replace(b"\x8c\x16numpy._core.multiarray", b"\x8c\x15numpy.core.multiarray")
    return data[:3] + len(renamed).to_bytes(8, "little") + renamed + data[11 + frame :]


def _bench(
    write_manifest: ManifestWriter, root: Path, checksums: dict[str, str] | None = None, extra: str = ""
) -> None:
    """A benchmark over the generated cases: data artifact, meta artifact (case list, md5s), no model needed."""
    rows = [
        (f"{name}/{file}", [str(root / name / file)], (root / name / file).read_bytes(), None)
        for name in CASES
        for file in ("imaging.nii.gz", "segmentation.nii.gz")
    ]
    meta = root / "meta"
    meta.mkdir(exist_ok=True)
    (meta / "inference_cases.json").write_text(json.dumps(list(CASES)))
    meta_rows = [("meta/inference_cases.json", [str(meta / "inference_cases.json")], None, None)]
    if checksums is not None:
        (meta / "checksum_inference.json").write_text(json.dumps(checksums, indent=4, sort_keys=True))
        meta_rows.append(("meta/checksum_inference.json", [str(meta / "checksum_inference.json")], None, None))
    meta_rows = [(n, u, Path(u[0]).read_bytes(), c) for n, u, _, c in meta_rows]
    write_manifest(
        dataset_toml("tinykits-cases", rows)
        + dataset_toml("tinykits-meta", meta_rows).replace("schema = 1\n", "")
        + '[[benchmark]]\nname = "tinykits"\ndataset = "tinykits-cases"\nmodels = []\n'
        + 'labels = "tinykits-meta/meta/inference_cases.json"\n'
        + f'[benchmark.preprocess]\nrecipe = "kits19-3dunet"\n{PARAMS}{extra}',
        name="tinykits",
    )


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kits19")
    for seed, (name, (shape, spacing)) in enumerate(CASES.items()):
        image, label = _volumes(shape, seed)
        write_case(root, name, image, label, spacing)
    return root


def test_each_case_equals_the_reference_definition(cases: Path) -> None:
    config = Kits19Config(roi_shape=(ROI, ROI, ROI))
    for name, (shape, _) in CASES.items():
        got = preprocess_case(cases / name, config)
        image, label = expected_case(cases / name)
        assert got.image.dtype == np.float32 and got.label.dtype == np.uint8
        assert np.array_equal(got.image, image) and np.array_equal(got.label, label), name
        assert got.info["original_shape"] == list(shape) and got.info["resampled"] is True
        assert got.info["image_shape"] == list(image.shape)
        assert all(n % STRIDE == 0 and n >= ROI for n in image.shape[1:])
    first = preprocess_case(cases / "case_00001", config).info
    assert first["resampled_shape"][0] < ROI and first["min_pad"][0] != [0, 0]  # edge-padded depth
    label = preprocess_case(cases / "case_00001", config).label[0]
    assert first["min_pad"][0] == [1, 1] and first["pad"][1] == [0, 1]  # (6, 11, 13) -> (8, 12, 12)
    assert np.all(label[0, :11] == 2) and np.all(label[0, 11] == 0)  # the border label repeated; constant pad 0


def test_preprocess_writes_reference_pickles_and_the_index(
    write_manifest: ManifestWriter, settings: Settings, cases: Path
) -> None:
    _bench(write_manifest, cases)
    assert api.fetch(["tinykits"], settings).ok
    report = api.preprocess("tinykits", settings, jobs=1)
    folder = api.preprocessed_path("tinykits", settings)
    assert report.items == len(CASES)
    for name in CASES:
        image, label = expected_case(cases / name)
        raw = (folder / f"{name}.pkl").read_bytes()
        assert raw == numpy1_pickle(image, label)  # the reference's bytes, as NumPy 1.x pickles them
        loaded = pickle.loads(raw)  # plain pickle reads it too
        assert np.array_equal(loaded[0], image) and np.array_equal(loaded[1], label)
        info = json.loads((folder / f"{name}.json").read_text())
        assert info["image_shape"] == list(image.shape) and info["case"] == name
    index = json.loads((folder / "cases.json").read_text())
    assert index["file_list"] == list(CASES) and index["roi_shape"] == [8, 8, 8] and index["overlap"] == 0.5
    assert index["pad_value"] == -2.2 and index["gaussian_sigma_scale"] == 0.125 and index["md5"] is None
    with open(folder / "preprocessed_files.pkl", "rb") as fh:
        aux = pickle.load(fh)
    assert aux["file_list"] == list(CASES)
    assert aux["cases"]["case_00002"]["image_shape"] == tuple(index["cases"]["case_00002"]["image_shape"])


def test_published_md5s_are_compared_and_can_be_required(
    write_manifest: ManifestWriter, settings: Settings, cases: Path
) -> None:
    good = hashlib.md5(numpy1_pickle(*expected_case(cases / "case_00001"))).hexdigest()
    _bench(write_manifest, cases, checksums={"case_00001.pkl": good, "case_00002.pkl": "0" * 32})
    assert api.fetch(["tinykits"], settings).ok
    api.preprocess("tinykits", settings, jobs=1)
    folder = api.preprocessed_path("tinykits", settings)
    md5 = json.loads((folder / "cases.json").read_text())["md5"]
    assert md5["matched"] == ["case_00001"] and md5["unlisted"] == []
    assert [m["case"] for m in md5["mismatched"]] == ["case_00002"]
    with pytest.raises(IntegrityError, match=r"1 of 2 preprocessed KiTS19 cases differ from the published md5s"):
        api.preprocess("tinykits", settings, jobs=1, params={"md5_check": "require"})


def test_the_pickle_bytes_are_numpy_1_26s() -> None:
    """md5s of ``pickle.dumps([image, label], protocol=4)`` made with numpy 1.26.4 (Python 3.11)."""
    measured = {
        (1, 2, 2, 2): "cce1a88fa8d2794349a21207091b5490",
        (1, 64, 32, 32): "245b2248d9cc4c6547e7ccaf74466a6a",  # the label fits a frame, the image does not
        (1, 128, 128, 160): "a3457215606f06a0790278024f3c4654",
    }
    for shape, md5 in measured.items():
        n = int(np.prod(shape))
        image = (np.arange(n).reshape(shape) % 997).astype(np.float32) / 7
        label = (np.arange(n).reshape(shape) % 3).astype(np.uint8)
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"kits19-pickle-{os.getpid()}.pkl"
        try:
            write_reference_pickle(path, image, label)
            assert hashlib.md5(path.read_bytes()).hexdigest() == md5, shape
            got_image, got_label = read_reference_pickle(path)
            assert np.array_equal(got_image, image) and np.array_equal(got_label, label)
        finally:
            path.unlink(missing_ok=True)


def test_a_pickle_with_other_globals_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "case_00009.pkl"
    path.write_bytes(pickle.dumps([np.zeros((1, 2, 2, 2), np.float32), {"x": Path("/")}], protocol=4))
    with pytest.raises(IntegrityError, match=r"case_00009\.pkl.*not a numpy array part"):
        read_reference_pickle(path)


#: Published md5s of preprocessed inference cases (mlcommons/inference meta/checksum_inference.json).
PUBLISHED = {
    "case_00000": "470ec60377be417a9c271ffd81c1d610",
    "case_00003": "a5536433cf1c01aaa8c4293ef59a826c",
    "case_00185": "2ae858449b63e2fe4466c29087540e9c",
    "case_00206": "0e59b9a2ef5bd4549938a97d136b06a8",
    "case_00207": "4c437995fb990736385e0dc2241255aa",
}


def _real_data() -> Path | None:
    value = os.environ.get("KITS19_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.mark.slow
@pytest.mark.skipif(
    _real_data() is None, reason="real KiTS19 data absent: set KITS19_DATA_DIR to a kits19 data/ folder"
)
def test_real_cases_match_the_published_md5s(tmp_path: Path) -> None:
    """The reference's md5 of each real case present (case_00000, 00003, 00185, 00206, 00207)."""
    data = _real_data()
    assert data is not None
    present = [c for c in PUBLISHED if (data / c / "imaging.nii.gz").is_file()]
    if not present:
        pytest.skip(f"none of {', '.join(PUBLISHED)} under {data}")
    config = Kits19Config()
    for case in present:
        done = preprocess_case(data / case, config)
        write_reference_pickle(tmp_path / f"{case}.pkl", done.image, done.label)
    checksums = tmp_path / "checksum_inference.json"
    checksums.write_text(json.dumps({f"{c}.pkl": m for c, m in PUBLISHED.items()}))
    check = check_md5s(tmp_path, present, checksums)
    details: list[Any] = check.mismatched
    assert check.matched == present, f"mismatched (case, got, published): {details}"


def test_doctor_names_the_recipe_libraries_and_the_extra_when_nibabel_is_missing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, cases: Path
) -> None:
    from provision.errors import MissingDependencyError
    from provision.readiness.needs import check_packages

    catalog = api.load(settings)
    check = {c.name: c for c in check_packages(catalog, catalog.get("3d-unet"))}["recipe kits19-3dunet"]
    assert check.status == "ok" and "nibabel" in check.detail and "scipy" in check.detail
    monkeypatch.setitem(sys.modules, "nibabel", None)  # as if not installed: import fails
    check = {c.name: c for c in check_packages(catalog, catalog.get("3d-unet"))}["recipe kits19-3dunet"]
    assert check.status == "fail" and check.fix == "pip install 'provision[kits19]'"
    with pytest.raises(
        MissingDependencyError, match=r"reading KiTS19 NIfTI volumes needs nibabel.*provision\[kits19\]"
    ):
        preprocess_case(cases / "case_00001", Kits19Config())
