"""File readers on tiny generated copies: cifar-100-python format and an image folder."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from test_data import check_stream, same_splits

from cft.config.registry import DATASETS
from cft.data import Cifar100Stream, ImageFolderStream, load_image

N_CLASSES, N_TRAIN, N_TEST = 6, 20, 5


def cifar_image(label: int, i: int) -> np.ndarray:
    """A recognisable (32, 32, 3) image: R = label, G = i, B = row index."""
    img = np.zeros((32, 32, 3), dtype=np.uint8)
    img[..., 0] = label
    img[..., 1] = i
    img[..., 2] = np.arange(32, dtype=np.uint8)[:, None]
    return img


def write_cifar(root: Path) -> Path:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        labels = np.repeat(np.arange(N_CLASSES), n)
        idx = np.tile(np.arange(n), N_CLASSES) + (100 if split == "test" else 0)
        imgs = np.stack([cifar_image(y, i) for y, i in zip(labels, idx)])
        data = imgs.transpose(0, 3, 1, 2).reshape(len(imgs), 3072)  # official CHW rows
        # test fixture written in the official (pickle) format on purpose
        with open(d / split, "wb") as fh:
            pickle.dump({b"data": data, b"fine_labels": labels.tolist(),
                         b"coarse_labels": (labels // 3).tolist()}, fh)
    with open(d / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [f"c{k}".encode() for k in range(N_CLASSES)],
                     b"coarse_label_names": [b"sup0", b"sup1"]}, fh)
    return d


def test_cifar_reader(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    s = Cifar100Stream(root=tmp_path, classes_per_task=2, calibration_size=4)
    check_stream(s)
    assert s.modality == "image" and s.n_tasks == 3
    assert s.class_names == [f"c{k}" for k in range(N_CLASSES)]
    for t in range(3):
        td = s.task(t)
        assert td.train.inputs.shape[1:] == (32, 32, 3) and td.train.inputs.dtype == np.uint8
        for split, n in (("train", N_TRAIN - 4), ("calibration", 4), ("test", N_TEST)):
            sp = td.split(split)
            assert len(sp) == 2 * n
            # pixels decode to the right label and to the right official split
            np.testing.assert_array_equal(sp.inputs[:, 0, 0, 0], sp.labels)
            green = sp.inputs[:, 0, 0, 1]
            assert (green >= 100).all() if split == "test" else (green < 100).all()
            np.testing.assert_array_equal(sp.inputs[0, :, 5, 2], np.arange(32))


def test_cifar_tar_and_coarse(tmp_path: Path) -> None:
    d = write_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(d, arcname="cifar-100-python")
    a = DATASETS.build("cifar100", seed=5, root=str(archive), classes_per_task=3)
    b = Cifar100Stream(seed=5, root=d, classes_per_task=3)
    assert same_splits(a, b)
    np.testing.assert_array_equal(a.task(1).test.inputs, b.task(1).test.inputs)
    c = Cifar100Stream(seed=0, root=d, label_type="coarse", classes_per_task=1, test_size=0.5)
    assert c.class_names == ["sup0", "sup1"] and len(c.task(0).test) == 8  # half of 3 x 5


def test_cifar_determinism_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar(tmp_path)
    orders = {tuple(Cifar100Stream(seed=k, root=tmp_path, classes_per_task=2).class_order)
              for k in range(4)}
    assert len(orders) > 1
    monkeypatch.delenv("CFT_CIFAR100_DIR", raising=False)
    for kw in [dict(), dict(root=tmp_path / "none"), dict(root=tmp_path, label_type="x"),
               dict(root=tmp_path, classes_per_task=2, test_size=6),
               dict(root=tmp_path, classes_per_task=2, calibration_size=20)]:
        with pytest.raises(ValueError) as err:
            Cifar100Stream(**kw)
        assert "\n" not in str(err.value)


def write_folder(root: Path, n_classes: int = 4, per_class: int = 7) -> list[tuple[int, ...]]:
    from PIL import Image

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for k in range(n_classes):
        d = root / f"class_{k}"
        d.mkdir(parents=True)
        for i in range(per_class):
            size = (20 + 3 * i, 12 + i)  # varying, non-square
            img = Image.new("RGB" if i % 3 else "L", size, colours[k] if i % 3 else 128)
            ext = ".png" if i % 2 else ".jpg"
            img.save(d / f"img{i}{ext}")
        (d / "notes.txt").write_text("not an image")
    (root / "empty_class").mkdir()
    return colours


def test_imagefolder_reader(tmp_path: Path) -> None:
    colours = write_folder(tmp_path)
    s = ImageFolderStream(root=tmp_path, image_size=16, n_tasks=2, test_size=2,
                          calibration_size=1)
    check_stream(s)
    assert s.class_names == [f"class_{k}" for k in range(4)]  # empty dir ignored
    assert s.n_tasks == 2
    td = s.task(0)
    assert td.train.inputs.shape == (2 * 4, 16, 16, 3) and td.train.inputs.dtype == np.uint8
    assert len(td.test) == 4 and len(td.calibration) == 2
    for split in ("train", "calibration", "test"):
        sp = td.split(split)
        for img, y in zip(sp.inputs, sp.labels):
            c = img[8, 8].astype(int)
            grey = np.all(np.abs(c - 128) <= 2)
            assert grey or np.all(np.abs(c - np.array(colours[y])) <= 8)
    st = ImageFolderStream(root=tmp_path, image_size=10, resize="stretch", n_tasks=1)
    assert st.task(0).test.inputs.shape[1:] == (10, 10, 3)
    assert ImageFolderStream(root=tmp_path).n_tasks == 4  # default min(10, n_classes)


def test_load_image_crop(tmp_path: Path) -> None:
    from PIL import Image

    a = np.zeros((10, 30, 3), dtype=np.uint8)
    a[:, :10] = 255  # left third white: removed by a centre crop, kept by a stretch
    Image.fromarray(a).save(tmp_path / "x.png")
    crop = load_image(tmp_path / "x.png", 10)
    stretch = load_image(tmp_path / "x.png", 10, "stretch")
    assert crop.shape == stretch.shape == (10, 10, 3)
    assert crop.max() < 50 and stretch[:, 0].min() > 200


def test_imagefolder_determinism_and_errors(tmp_path: Path) -> None:
    write_folder(tmp_path, n_classes=5, per_class=6)
    kw = dict(root=tmp_path, image_size=8, classes_per_task=1)
    a, b = ImageFolderStream(seed=1, **kw), ImageFolderStream(seed=1, **kw)
    assert same_splits(a, b)
    orders = {tuple(ImageFolderStream(seed=k, **kw).class_order) for k in range(4)}
    assert len(orders) > 1
    assert not same_splits(a, ImageFolderStream(seed=2, class_order=a.class_order.tolist(),
                                                root=tmp_path, image_size=8,
                                                classes_per_task=1))
    (tmp_path / "void").mkdir()
    for bad in [dict(root=tmp_path / "nope"), dict(root=tmp_path / "void"),
                dict(root=tmp_path, image_size=0), dict(root=tmp_path, resize="pad"),
                dict(root=tmp_path, n_tasks=6), dict(root=tmp_path, min_class_size=7)]:
        with pytest.raises(ValueError) as err:
            ImageFolderStream(**bad)
        assert "\n" not in str(err.value)
