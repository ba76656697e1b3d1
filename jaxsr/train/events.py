"""TensorBoard event files, written without TensorFlow.

An event file is a TFRecord stream of ``Event`` protocol buffers: each record is its
length (8 bytes, little-endian), the masked CRC-32C of the length, the bytes, and
their masked CRC-32C. TensorBoard's own protos (``tensorboard.compat.proto``) and
``google_crc32c`` are all it takes, where clu's writer goes through ``tf.summary`` —
importing TensorFlow, which took 3–4 s of every 8-second tiny training process here
and printed its own notices. Scalars are written as ``simple_value``, images as PNGs,
the config as the hparams plugin's session-start record (TensorBoard's HPARAMS tab).
"""

from __future__ import annotations

import io
import os
import socket
import struct
import time
from collections.abc import Mapping

import google_crc32c
import numpy as np
from google.protobuf import struct_pb2
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import plugin_data_pb2


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", _masked_crc(header))
        + data
        + struct.pack("<I", _masked_crc(data))
    )


def _png(image: np.ndarray) -> summary_pb2.Summary.Image:
    """``(H, W, C)`` float in [0, 1] (or uint8) → an encoded image summary."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[-1]
    return summary_pb2.Summary.Image(
        height=h, width=w, colorspace=channels, encoded_image_string=buf.getvalue()
    )


class EventWriter:
    """Writes ``events.out.tfevents.*`` into a local ``logdir`` (a new file per
    writer, so a resumed run adds its own beside the earlier ones)."""

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "ab")  # noqa: SIM115 (held open until close)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: event_pb2.Event) -> None:
        self._file.write(_record(event.SerializeToString()))

    def _summary(self, step: int, values: list) -> None:
        summary = summary_pb2.Summary(value=values)
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        self._summary(
            step,
            [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()],
        )

    def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """``{tag: (N, H, W, C) or (H, W, C)}``; a batch gives ``tag/0``, ``tag/1``, …"""
        values = []
        for tag, batch in images.items():
            batch = np.asarray(batch)
            batch = batch[None] if batch.ndim == 3 else batch
            for i, image in enumerate(batch):
                name = tag if len(batch) == 1 else f"{tag}/{i}"
                values.append(summary_pb2.Summary.Value(tag=name, image=_png(image)))
        self._summary(step, values)

    def write_hparams(self, hparams: Mapping[str, int | float | str | bool]) -> None:
        """The run's settings as TensorBoard's HPARAMS session-start record."""
        start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for k, v in hparams.items():
            if isinstance(v, bool):
                start.hparams[k].CopyFrom(struct_pb2.Value(bool_value=v))
            elif isinstance(v, int | float):
                start.hparams[k].CopyFrom(struct_pb2.Value(number_value=float(v)))
            else:
                start.hparams[k].CopyFrom(struct_pb2.Value(string_value=str(v)))
        data = plugin_data_pb2.HParamsPluginData(version=0, session_start_info=start)
        value = summary_pb2.Summary.Value(
            tag=hparams_metadata.SESSION_START_INFO_TAG,
            metadata=hparams_metadata.create_summary_metadata(data),
            tensor=tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b""]),
        )
        self._summary(0, [value])

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class NullWriter:
    """What processes other than the first write: nothing (their lines go to their
    logs)."""

    def write_scalars(self, step, scalars) -> None:
        pass

    def write_images(self, step, images) -> None:
        pass

    def write_hparams(self, hparams) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
