"""core.imaging.door: every raster mode, pydicom's real DICOM files, refusals, and patient privacy."""

from __future__ import annotations

import io
import logging
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID

from core.imaging import dicom, door as images
from core.errors import UnsupportedImageError
from core.imaging.door import LoadedImage, load_image

H, W = 40, 64


def dicom_path(name: str) -> Path:
    """A DICOM file shipped inside the pydicom wheel (never downloaded)."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom no longer ships {name}"
    return Path(path)


def assert_grey_unit(image: LoadedImage, shape: tuple[int, int]) -> None:
    assert image.pixels.shape == shape
    assert image.pixels.dtype == np.float32
    assert np.isfinite(image.pixels).all()
    assert 0.0 <= float(image.pixels.min()) and float(image.pixels.max()) <= 1.0


def ramp(dtype: type, lo: float, hi: float) -> np.ndarray:
    """(H, W) horizontal ramp from lo to hi, identical on every row."""
    return np.tile(np.linspace(lo, hi, W), (H, 1)).astype(dtype)


def save(tmp_path: Path, img: Image.Image, name: str, **kwargs: object) -> Path:
    path = tmp_path / name
    img.save(path, **kwargs)
    return path


# --------------------------------------------------------------------------- raster formats


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif"), ("JPEG", "jpg")])
def test_8bit_grey_keeps_values(tmp_path: Path, fmt: str, ext: str) -> None:
    arr = ramp(np.uint8, 0, 255)
    image = load_image(save(tmp_path, Image.fromarray(arr, "L"), f"g.{ext}", format=fmt))
    assert_grey_unit(image, (H, W))
    assert image.format == fmt
    tolerance = 0.03 if fmt == "JPEG" else 1e-6
    np.testing.assert_allclose(image.pixels, arr / 255.0, atol=tolerance)
    assert image.metadata["mode"] == "L" and image.metadata["width"] == str(W)


@pytest.mark.parametrize(
    "mode, ext",
    [("I;16", "png"), ("I;16", "tif"), ("I;16B", "tif"), ("I;16L", "tif"), ("I", "tif")],
)
def test_16bit_and_32bit_integer_scaled_by_real_range(tmp_path: Path, mode: str, ext: str) -> None:
    values = ramp(np.uint16, 1000, 4000)  # a 12-bit detector in a 16-bit file: /255 or /65535 would be wrong
    if mode == "I":
        img = Image.fromarray(values.astype(np.int32))
    else:
        dtype = ">u2" if mode == "I;16B" else "<u2"
        img = Image.frombytes(mode, (W, H), values.astype(dtype).tobytes())
    image = load_image(save(tmp_path, img, f"deep.{ext}"))
    assert_grey_unit(image, (H, W))
    row = image.pixels[0]
    assert np.all(np.diff(row) > 0), "the ramp's ordering must survive"
    assert row[0] == pytest.approx(0.0, abs=1e-6) and row[-1] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(image.pixels, (values - 1000.0) / 3000.0, atol=1e-5)


def test_float_tiff_outside_unit_range_is_stretched(tmp_path: Path) -> None:
    values = ramp(np.float32, -50.0, 250.0)
    values[0, 0] = np.nan
    image = load_image(save(tmp_path, Image.fromarray(values, "F"), "float.tif"))
    assert_grey_unit(image, (H, W))
    np.testing.assert_allclose(image.pixels[1], (values[1] + 50.0) / 300.0, atol=1e-5)
    assert image.pixels[0, 0] == 0.0
    assert any("NaN" in note for note in image.notes)


def test_float_tiff_in_unit_range_is_kept(tmp_path: Path) -> None:
    values = ramp(np.float32, 0.2, 0.6)
    image = load_image(save(tmp_path, Image.fromarray(values, "F"), "unit.tif"))
    np.testing.assert_allclose(image.pixels, values, atol=1e-6)


@pytest.mark.parametrize("fmt, ext", [("PNG", "png"), ("BMP", "bmp"), ("JPEG", "jpg"), ("TIFF", "tiff")])
def test_rgb_becomes_luminance(tmp_path: Path, fmt: str, ext: str) -> None:
    grey = ramp(np.uint8, 10, 240)
    rgb = np.stack([grey, grey, grey], axis=-1)
    image = load_image(save(tmp_path, Image.fromarray(rgb, "RGB"), f"rgb.{ext}", format=fmt))
    assert_grey_unit(image, (H, W))
    np.testing.assert_allclose(image.pixels, grey / 255.0, atol=0.03 if fmt == "JPEG" else 1e-5)
    assert not any("colour" in note for note in image.notes), "a grey picture saved as RGB is not 'coloured'"


def test_coloured_rgb_is_noted(tmp_path: Path) -> None:
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # pure red: luma 0.299 * 200
    image = load_image(save(tmp_path, Image.fromarray(rgb, "RGB"), "red.png"))
    np.testing.assert_allclose(image.pixels, 0.299 * 200 / 255.0, atol=1e-5)
    assert any("colour" in note for note in image.notes)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composited_over_black(tmp_path: Path, mode: str) -> None:
    grey = np.full((H, W), 200, dtype=np.uint8)
    alpha = np.full((H, W), 255, dtype=np.uint8)
    alpha[:, : W // 2] = 0  # left half fully transparent
    alpha[:, W // 2 : W // 2 + 4] = 128
    channels = [grey, grey, grey, alpha] if mode == "RGBA" else [grey, alpha]
    image = load_image(save(tmp_path, Image.fromarray(np.stack(channels, axis=-1), mode), f"{mode}.png"))
    assert_grey_unit(image, (H, W))
    assert float(image.pixels[:, : W // 2].max()) == 0.0, "transparent = empty = black"
    np.testing.assert_allclose(image.pixels[:, -1], 200 / 255.0, atol=1e-5)
    np.testing.assert_allclose(image.pixels[:, W // 2], 200 / 255.0 * 128 / 255.0, atol=1e-5)
    assert any("Transparent" in note for note in image.notes)


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_image(tmp_path: Path, transparent: bool) -> None:
    grey = ramp(np.uint8, 0, 255)
    img = Image.fromarray(grey, "L").convert("P")
    kwargs = {"transparency": int(np.asarray(img)[0, 0])} if transparent else {}
    image = load_image(save(tmp_path, img, "palette.png", **kwargs))
    assert image.metadata["mode"] == "P"
    assert_grey_unit(image, (H, W))
    assert np.all(np.diff(image.pixels[5]) >= 0)
    assert image.pixels[5, -1] > 0.95
    if transparent:
        assert image.pixels[0, 0] == 0.0


def test_cmyk_jpeg(tmp_path: Path) -> None:
    grey = ramp(np.uint8, 20, 230)
    img = Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB").convert("CMYK")
    image = load_image(save(tmp_path, img, "cmyk.jpg", quality=95))
    assert image.metadata["mode"] == "CMYK"
    assert_grey_unit(image, (H, W))
    np.testing.assert_allclose(image.pixels, grey / 255.0, atol=0.04)


def test_one_bit_image(tmp_path: Path) -> None:
    bits = np.zeros((H, W), dtype=bool)
    bits[:, W // 2 :] = True
    image = load_image(save(tmp_path, Image.fromarray(bits), "bits.png"))
    assert_grey_unit(image, (H, W))
    assert image.pixels[:, W // 2 :].min() == 1.0 and image.pixels[:, : W // 2].max() == 0.0


def test_multipage_tiff_page_choice_and_out_of_range(tmp_path: Path) -> None:
    pages = [Image.fromarray(np.full((H, W), v, dtype=np.uint8)) for v in (10, 100, 250)]
    path = tmp_path / "stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    first = load_image(path)
    assert first.n_frames == 3 and first.frame_index == 0
    assert first.pixels.mean() == pytest.approx(10 / 255, abs=1e-6)
    assert load_image(path, frame=2).pixels.mean() == pytest.approx(250 / 255, abs=1e-6)
    with pytest.raises(UnsupportedImageError, match=r"^stack\.tif: page 3 does not exist"):
        load_image(path, frame=3)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((H, W), dtype=np.uint8)
    arr[:, :8] = 255  # bright band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image = load_image(save(tmp_path, Image.fromarray(arr, "L"), "phone.jpg", exif=exif, quality=95))
    assert image.pixels.shape == (W, H)
    assert image.pixels[:8].mean() > 0.8  # the band is now on top
    assert any("orientation" in note for note in image.notes)


def test_bytes_source_uses_given_name(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(ramp(np.uint8, 0, 255), "L").save(buffer, format="PNG")
    image = load_image(buffer.getvalue(), name="chest.png")
    assert image.source_name == "chest.png"
    assert_grey_unit(image, (H, W))
    assert load_image(buffer.getvalue()).source_name == "upload"
    with pytest.raises(UnsupportedImageError, match=r"^NORMAL/broken\.png: "):
        load_image(buffer.getvalue()[:50], name="NORMAL/broken.png")  # a path inside an archive stays whole


# --------------------------------------------------------------------------- DICOM, pydicom's real files


def load_dicom(name: str, **kwargs: object) -> LoadedImage:
    image = load_image(dicom_path(name), **kwargs)
    assert image.format == "DICOM"
    return image


@pytest.mark.parametrize(
    "twin, syntax",
    [
        ("MR_small_RLE.dcm", "RLE Lossless"),
        ("MR_small_jp2klossless.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless Image Compression"),
        ("MR_small_bigendian.dcm", "Explicit VR Big Endian"),
        ("MR_small_implicit.dcm", "Implicit VR Little Endian"),
    ],
)
def test_compressed_and_big_endian_match_their_uncompressed_twin(twin: str, syntax: str) -> None:
    reference = load_dicom("MR_small.dcm")
    image = load_dicom(twin)
    assert image.metadata["TransferSyntax"] == syntax
    assert_grey_unit(image, (64, 64))
    np.testing.assert_array_equal(image.pixels, reference.pixels)


@pytest.mark.parametrize(
    "name, max_diff",
    [
        ("SC_rgb_jpeg_gdcm.dcm", 0.0),  # JPEG lossless, process 14
        ("SC_rgb_gdcm_KY.dcm", 0.0),  # JPEG 2000, RGB
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", 0.05),  # JPEG baseline, YBR_FULL_422
        ("SC_rgb_jls_lossy_line.dcm", 0.02),  # JPEG-LS near-lossless
        ("SC_ybr_full_422_uncompressed.dcm", 0.02),  # uncompressed YBR
    ],
)
def test_colour_dicom_matches_rle_twin(name: str, max_diff: float) -> None:
    reference = load_dicom("SC_rgb_rle.dcm")
    image = load_dicom(name)
    assert_grey_unit(image, (100, 100))
    assert float(np.abs(image.pixels - reference.pixels).max()) <= max_diff
    assert any("colour" in note for note in image.notes)


def test_mr_window_from_file_is_applied() -> None:
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    image = load_dicom("MR_small.dcm")
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    expected = np.clip((ds.pixel_array - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    np.testing.assert_allclose(image.pixels, expected, atol=2e-3)
    assert image.metadata["Modality"] == "MR" and image.metadata["WindowWidth"] == str(ds.WindowWidth)


def test_ct_rescale_happens_before_the_window(tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_path("CT_small.dcm"))
    assert float(ds.RescaleIntercept) == -1024.0
    ds.WindowCenter, ds.WindowWidth = 40, 400  # soft-tissue window in Hounsfield units
    path = tmp_path / "ct.dcm"
    ds.save_as(path)
    image = load_image(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.clip((hu - 39.5) / 399.0 + 0.5, 0, 1)
    np.testing.assert_allclose(image.pixels, expected, atol=2e-3)
    assert float(image.metadata["RescaleIntercept"]) == -1024.0


def test_ct_without_window_spans_unit_range() -> None:
    image = load_dicom("CT_small.dcm")
    assert_grey_unit(image, (128, 128))
    assert float(image.pixels.min()) == 0.0 and float(image.pixels.max()) == 1.0


@pytest.mark.parametrize(
    "name, shape, syntax",
    [
        ("JPGExtended.dcm", (1024, 256), "JPEG Extended (Process 2 and 4)"),
        ("JPEG2000.dcm", (1024, 256), "JPEG 2000 Image Compression"),
        ("693_J2KI.dcm", (512, 512), "JPEG 2000 Image Compression"),
        ("image_dfl.dcm", (512, 512), "Deflated Explicit VR Little Endian"),
        ("examples_palette.dcm", (350, 800), "Explicit VR Little Endian"),
        ("ExplVR_BigEnd.dcm", (60, 80), "Explicit VR Big Endian"),
    ],
)
def test_other_real_dicom_files_decode(name: str, shape: tuple[int, int], syntax: str) -> None:
    image = load_dicom(name)
    assert_grey_unit(image, shape)
    assert image.metadata["TransferSyntax"] == syntax
    assert float(image.pixels.std()) > 0.01, "a decoded image has structure, not a flat field"


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    # pydicom ships no MONOCHROME1 file in its wheel, so relabel MR_small (same pixels, same window).
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    inverted = load_image(path)
    np.testing.assert_allclose(inverted.pixels, 1.0 - load_dicom("MR_small.dcm").pixels, atol=1e-6)
    assert any("MONOCHROME1" in note for note in inverted.notes)


def test_multiframe_defaults_to_middle_and_decodes_the_chosen_frame() -> None:
    ds = pydicom.dcmread(dicom_path("examples_ybr_color.dcm"))
    middle = load_dicom("examples_ybr_color.dcm")
    assert (middle.n_frames, middle.frame_index) == (30, 15)
    assert any("Frame 16 of 30" in note for note in middle.notes)
    third = load_dicom("examples_ybr_color.dcm", frame=2)
    assert third.frame_index == 2
    expected = (ds.pixel_array[2].astype(np.float32) / 255.0) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(third.pixels, expected, atol=1e-5)
    assert not np.allclose(third.pixels, middle.pixels)


@pytest.mark.parametrize("frame", [15, -1, 99])
def test_multiframe_out_of_range_frame_is_refused(frame: int) -> None:
    with pytest.raises(UnsupportedImageError, match=rf"^rtdose\.dcm: frame {frame} does not exist; the file has 15"):
        load_dicom("rtdose.dcm", frame=frame)


def test_native_multiframe_frame_matches_pydicom() -> None:
    ds = pydicom.dcmread(dicom_path("rtdose.dcm"))
    image = load_dicom("rtdose.dcm", frame=3)
    raw = ds.pixel_array[3].astype(np.float64)
    np.testing.assert_allclose(image.pixels, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-5)


def test_dicom_without_extension_and_without_preamble(tmp_path: Path) -> None:
    reference = load_dicom("MR_small.dcm").pixels
    original = dicom_path("MR_small.dcm").read_bytes()
    bare = tmp_path / "IM0001"  # a PACS export: no extension
    bare.write_bytes(original)
    no_preamble = tmp_path / "IM0002.dcm"  # file meta, but no 128-byte preamble / "DICM"
    no_preamble.write_bytes(original[132:])
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    raw = io.BytesIO()  # a bare implicit-VR dataset, as old modalities write it
    pydicom.dcmwrite(raw, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    for source, name in [(bare, None), (no_preamble, None), (raw.getvalue(), "IM0003"), (original, "scan")]:
        image = load_image(source, name=name)
        assert image.format == "DICOM"
        np.testing.assert_array_equal(image.pixels, reference)


def test_unsupported_transfer_syntax_is_named(tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_path("MR_small_RLE.dcm"))
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2: no decoder exists
    path = tmp_path / "video.dcm"
    ds.save_as(path)
    with pytest.raises(UnsupportedImageError, match=r"^video\.dcm: .*compressed as 'MPEG2 Main Profile"):
        load_image(path)


SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.jpeg")), ids=lambda p: p.name)
def test_bundled_samples_load(path: Path) -> None:
    image = load_image(path)
    assert_grey_unit(image, (224, 224))
    assert float(image.pixels.std()) > 0.1


def test_demo_dicom_matches_its_jpeg_and_is_anonymous() -> None:
    demo = load_image(SAMPLES / "pneumonia_demo.dcm")
    source = load_image(SAMPLES / "pneumonia_bacteria_1.jpeg")
    np.testing.assert_allclose(demo.pixels, source.pixels, atol=1e-6)
    expected = {"Modality": "CR", "BodyPartExamined": "CHEST", "ViewPosition": "AP"}
    expected["PhotometricInterpretation"] = "MONOCHROME2"
    assert expected.items() <= demo.metadata.items()
    ds = pydicom.dcmread(SAMPLES / "pneumonia_demo.dcm")
    assert str(ds.PatientName) == "ANONYMOUS" and "PatientBirthDate" not in ds and "StudyDate" not in ds
    assert len(list(SAMPLES.glob("*.jpeg"))) == 12
    assert sum(p.stat().st_size for p in SAMPLES.iterdir()) < 1_000_000


# --------------------------------------------------------------------------- refusals


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG signature + IHDR (with a valid CRC) for a huge 8-bit grey image, and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 1000)
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return b"\x89PNG\r\n\x1a\n" + chunk + idat_chunk


def half_of(data: bytes) -> bytes:
    return data[: len(data) // 2]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("NORMAL/a.png", png_bytes())
    return buffer.getvalue()


def absurd_dicom_bytes() -> bytes:
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    ds.Rows, ds.Columns = 60000, 60000  # 3.6 gigapixels, while the pixel data stays 64 x 64
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def absurd_frames_dicom_bytes() -> bytes:
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 4000, 4000, 5000  # 16 MP per frame is fine; 160 GB is not
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


BAD_FILES = {
    "empty.png": (lambda: b"", "empty"),
    "half.png": (lambda: half_of(png_bytes()), "damaged or incomplete"),
    "half.jpg": (lambda: half_of(jpeg_bytes()), "damaged or incomplete"),
    "half.dcm": (lambda: half_of(dicom_path("CT_small.dcm").read_bytes()), "damaged or incomplete"),
    "header_only.dcm": (lambda: dicom_path("CT_small.dcm").read_bytes()[:300], "damaged or incomplete|no image"),
    "notes.txt": (lambda: b"Patient looked well. Follow up in 2 weeks.\n" * 20, "text file"),
    "notes.png": (lambda: "Résumé of findings\n".encode() * 20, "text file"),
    "images.zip": (zip_bytes, "ZIP archive"),
    "noise.bin": (lambda: np.random.default_rng(1).bytes(5000), "not a recognised image format"),
    "noise": (lambda: np.random.default_rng(2).bytes(5000), "not a recognised image format"),
    "bomb.png": (lambda: png_header_claiming(100_000, 100_000), "too large"),
    "big.png": (lambda: png_header_claiming(9_000, 9_000), "too large"),  # 81 MP: under Pillow's limit, over ours
    "warn.png": (lambda: png_header_claiming(10_000, 10_000), "too large"),  # Pillow's DecompressionBombWarning band
    "absurd.dcm": (absurd_dicom_bytes, "too large"),
    "absurd_frames.dcm": (absurd_frames_dicom_bytes, "5000 frames"),
    "anim.gif": (lambda: b"GIF89a" + b"\x00" * 100, "GIF"),
    "tiny.dcm": (lambda: dicom_path("SC_rgb_small_odd.dcm").read_bytes(), "too small"),
}


@pytest.mark.parametrize("file_name", sorted(BAD_FILES))
@pytest.mark.parametrize("as_bytes", [False, True])
def test_bad_files_are_refused_naming_the_file(tmp_path: Path, file_name: str, as_bytes: bool) -> None:
    make, reason = BAD_FILES[file_name]
    data = make()
    if as_bytes:
        call = lambda: load_image(data, name=file_name)  # noqa: E731
    else:
        path = tmp_path / file_name
        path.write_bytes(data)
        call = lambda: load_image(path)  # noqa: E731
    with pytest.raises(UnsupportedImageError, match=rf"^{file_name.replace('.', '[.]')}: ") as caught:
        call()
    assert any(part in str(caught.value) for part in reason.split("|")), str(caught.value)


def test_file_over_the_byte_limit_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes())
    with pytest.raises(UnsupportedImageError, match=r"^huge\.png: the file is .* MB, more than"):
        load_image(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImageError, match=r"^gone\.png: "):
        load_image(tmp_path / "gone.png")


# --------------------------------------------------------------------------- patient privacy

PHI = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-12345",
    "PatientBirthDate": "19800314",
    "InstitutionName": "St Elsewhere General",
    "ReferringPhysicianName": "House^Gregory",
    "AccessionNumber": "ACC-998877",
    "StudyDate": "20240229",
}
PHI_STRINGS = ["Doe", "Jane", "MRN-12345", "19800314", "Elsewhere", "House", "Gregory", "ACC-998877", "20240229"]


def phi_dicom_bytes() -> bytes:
    ds = pydicom.dcmread(dicom_path("MR_small.dcm"))
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def assert_no_phi(text: str) -> None:
    leaked = [s for s in PHI_STRINGS if s.lower() in text.lower()]
    assert not leaked, f"patient data leaked: {leaked}"


def test_patient_identity_never_leaves_the_loader(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "study.dcm"
    path.write_bytes(phi_dicom_bytes())
    with caplog.at_level(logging.DEBUG):
        image = load_image(path)
    assert_grey_unit(image, (64, 64))
    assert_no_phi(repr(image))
    assert_no_phi(repr(image.metadata) + repr(image.notes))
    assert_no_phi(caplog.text)
    assert set(image.metadata) <= set(dicom.SAFE_FIELDS) | {"TransferSyntax"}


def test_truncated_phi_file_error_has_no_patient_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = phi_dicom_bytes()
    for cut in (len(data) // 2, 600, 400):
        path = tmp_path / f"cut{cut}.dcm"
        path.write_bytes(data[:cut])
        with caplog.at_level(logging.DEBUG), pytest.raises(UnsupportedImageError) as caught:
            load_image(path)
        assert str(caught.value).startswith(f"cut{cut}.dcm: ")
        assert_no_phi(str(caught.value))
        assert_no_phi(caplog.text)


def test_exif_orientation_is_applied_and_noted_only_when_present(tmp_path):
    from PIL import Image

    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (32, 1))  # 32 rows x 64 columns, bright to the right
    plain, turned = tmp_path / "plain.jpeg", tmp_path / "turned.jpeg"
    Image.fromarray(ramp).save(plain, quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(ramp).save(turned, quality=95, exif=exif)

    upright = load_image(plain)
    assert upright.pixels.shape == (32, 64) and not any("orientation" in n for n in upright.notes)
    rotated = load_image(turned)
    assert rotated.pixels.shape == (64, 32)
    assert any("orientation" in n for n in rotated.notes)


@pytest.mark.parametrize("cut", [0.35, 0.6])
def test_any_decoder_failure_becomes_our_error_naming_the_file(tmp_path, cut):
    """Damaged headers make decoders raise TypeError/NotImplementedError...: never a traceback for a user."""
    from PIL import Image

    tiff = tmp_path / "scan.tiff"
    Image.fromarray(np.full((64, 64), 128, dtype=np.uint8)).save(tiff)
    data = bytearray(tiff.read_bytes())
    rng = np.random.default_rng(int(cut * 100))
    for position in rng.integers(8, int(len(data) * cut), size=40):
        data[position] = rng.integers(0, 256)
    damaged = tmp_path / "damaged.tiff"
    damaged.write_bytes(bytes(data))
    try:
        load_image(damaged)
    except UnsupportedImageError as exc:
        assert str(exc).startswith("damaged.tiff")


def test_a_decoder_exception_of_an_unexpected_type_is_converted(monkeypatch, tmp_path):
    from core.imaging import raster

    def broken_decoder(*args, **kwargs):
        raise NotImplementedError("PatientName Doe^Jane")

    monkeypatch.setattr(raster, "decode_raster", broken_decoder)
    png = tmp_path / "film.png"
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(png)
    with pytest.raises(UnsupportedImageError, match=r"^film\.png: .*NotImplementedError") as info:
        load_image(png)
    assert "Doe" not in str(info.value)


def _ct_with(**changes) -> bytes:
    import io

    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for key, value in changes.items():
        setattr(ds, key, value(ds) if callable(value) else value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_pixel_data_longer_than_the_header_says_is_refused() -> None:
    from core.imaging import door

    with pytest.raises(UnsupportedImageError, match=r"pixel data holds 98,304 bytes .* describes 32,768"):
        door.load_image(_ct_with(PixelData=lambda ds: ds.PixelData * 3), "long.dcm")


@pytest.mark.parametrize("typed, shown", [("DOE^JOHN", "(not shown: not a standard code)"),
                                          ("JOHN DOE", "(not shown: not a standard code)"), ("CHEST", "CHEST")])
def test_free_text_in_a_coded_header_field_is_never_shown(typed: str, shown: str) -> None:
    from core.imaging import door

    assert door.load_image(_ct_with(BodyPartExamined=typed), "x.dcm").metadata["BodyPartExamined"] == shown
