#!/usr/bin/python3
"""Writes Debian's dataset-fashion-mnist as class folders of PNG files, the form the evaluation stage reads labels from.

    scripts/datasets/fashion-mnist-folders.py OUT [--train N] [--test N] [--validation]

OUT/train/<class>/<index>.png takes the first N training images (default 10000), OUT/test/<class>/<index>.png the
first N test images (default 2000). With --validation the test folder holds the first N of the last 10 000 training
images instead, and the training folder takes at most the 50 000 before them: a split to choose hyperparameters on
without reading the test set. Grey levels are written as 8-bit greyscale PNGs; staging reads them as RGB.
"""
import argparse
import gzip
import os
import struct
import zlib

SOURCE = "/usr/share/datasets/fashion-mnist"
CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return [data[16 + i * rows * cols:16 + (i + 1) * rows * cols] for i in range(count)], rows, cols
    if magic == 2049:
        return list(data[8:8 + count]), 0, 0
    raise ValueError(f"{path}: not an IDX file (magic {magic})")


def png(pixels, width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


VALIDATION_START = 50000


def write(split, prefix, limit, out, start=0):
    images, rows, cols = read_idx(os.path.join(SOURCE, f"{prefix}-images-idx3-ubyte.gz"))
    labels, _, _ = read_idx(os.path.join(SOURCE, f"{prefix}-labels-idx1-ubyte.gz"))
    images, labels = images[start:], labels[start:]
    for index in range(min(limit, len(images))):
        folder = os.path.join(out, split, CLASSES[labels[index]])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{index:05d}.png"), "wb") as f:
            f.write(png(images[index], cols, rows))
    print(f"{split}: {min(limit, len(images))} images in {os.path.join(out, split)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--validation", action="store_true")
    args = parser.parse_args()
    if args.validation:
        write("train", "train", min(args.train, VALIDATION_START), args.out)
        write("test", "train", args.test, args.out, start=VALIDATION_START)
    else:
        write("train", "train", args.train, args.out)
        write("test", "t10k", args.test, args.out)


if __name__ == "__main__":
    main()
