"""Whether a media file's end was cut off, read from its container's own structure.

A demuxer reads a cut file happily up to where it stops, so a source whose upload was
cut short looks like a shorter, valid source, until the streams that end at different
points of the cut come out of sync. Most containers say, in their structure, how long
what follows is: a box, an element, a chunk or a tag declares its size, a transport
stream packet is 188 bytes and a PES packet declares its length, a page carries a
checksum, a header partition points at the footer. `cut_reason` walks that structure
(only headers, and only the tail where one suffices) and says where the file ends
inside something it declared, or None when the structure is whole or says nothing.

Elementary streams without a container (raw H.264, ADTS AAC...) declare no sizes; they
are not checked here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import BinaryIO

#: How much of the end a tail check reads: more than any packet or page it looks for.
TAIL = 1 << 20

_Checker = Callable[[BinaryIO, int], "str | None"]


def cut_reason(f: BinaryIO, size: int, format_name: str | None) -> str | None:
    """Why the file ``f`` (``size`` bytes) is cut, or None if its structure is whole.

    ``format_name`` is the ffmpeg demuxer that opened it; None (a file ffmpeg could
    not open) picks the checker by the file's first bytes."""
    if format_name is not None:
        checker = CHECKERS.get(format_name)
    else:
        f.seek(0)
        checker = _sniff(f.read(16))
    if checker is None:
        return None
    f.seek(0)
    try:
        return checker(f, size)
    except (struct.error, ValueError, IndexError, KeyError):
        return None  # a structure this reader does not follow: say nothing


def _sniff(head: bytes) -> _Checker | None:
    """The checker for a file ffmpeg could not open, by its first bytes."""
    for magic, checker in _MAGIC:
        if head.startswith(magic):
            return checker
    if head[4:8] in _BOX_TYPES:
        return _bmff
    if head[:1] == b"\x47" or head[4:5] == b"\x47":
        return _ts  # it checks the sync bytes further on itself
    return None


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


# -- ISO base media (MP4, MOV, M4A, 3GP) ------------------------------------------------

_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"moof"}


def _bmff(f: BinaryIO, size: int) -> str | None:
    """Top-level boxes: each declares its size; the movie needs its index (moov/moof)."""
    offset, seen = 0, set()
    while offset + 8 <= size:
        header = _read_at(f, offset, 16)
        length, kind = struct.unpack(">I4s", header[:8])
        if length == 1:
            length = struct.unpack(">Q", header[8:16])[0]
        elif length == 0:  # "to the end of the file"
            length = size - offset
        name = kind.decode("latin-1")
        if length < 8 or not name.isprintable():
            return None  # not a box: leave the verdict to the demuxer
        if offset + length > size:
            return (
                f"the file ends inside its {name!r} box, which declares {length:,} bytes "
                f"and holds {size - offset:,}"
            )
        seen.add(kind)
        offset += length
    if b"mdat" in seen and not seen & {b"moov", b"moof"}:
        return "the file ends before its index (the 'moov' box that follows the media data)"
    return None


# -- Matroska, WebM ---------------------------------------------------------------------

_EBML = b"\x1a\x45\xdf\xa3"
_SEGMENT = 0x18538067


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-length integer at ``at``: (value, its length, all ones)."""
    first = data[at]
    if first == 0:
        raise ValueError("not an EBML number")
    n = 9 - first.bit_length()
    if len(data) < at + n:
        raise ValueError("short EBML number")
    value = int.from_bytes(data[at : at + n], "big")
    if not keep_marker:
        value &= (1 << (7 * n)) - 1
    return value, n, value == (1 << (7 * n)) - 1


def _element(f: BinaryIO, offset: int) -> tuple[int, int, int | None]:
    """An element's (id, header length, data size or None when unknown)."""
    data = _read_at(f, offset, 12)
    ident, n = _vint(data, 0, keep_marker=True)[:2]
    length, m, unknown = _vint(data, n, keep_marker=False)
    return ident, n + m, None if unknown else length


def _ebml(f: BinaryIO, size: int) -> str | None:
    """The EBML header, then the Segment and its top-level elements (clusters, cues...),
    each with a declared size (a live stream's may be unknown: then nothing is said)."""
    _, header, length = _element(f, 0)
    if length is None:
        return None
    offset = header + length
    ident, header, segment = _element(f, offset)
    if ident != _SEGMENT:
        return None
    start = offset + header
    end = size if segment is None else start + segment
    offset = start
    while offset < min(end, size):
        if size - offset < 2:
            return "the file ends inside the header of one of its elements"
        ident, header, length = _element(f, offset)
        if length is None:
            return None  # a live cluster of unknown size: nothing more to go by
        if offset + header + length > size:
            return (
                f"the file ends inside an element (id 0x{ident:X}) that declares "
                f"{length:,} bytes and holds {size - offset - header:,}"
            )
        offset += header + length
    if end > size:
        return f"its segment declares {end:,} bytes and the file has {size:,}"
    return None


# -- RIFF (AVI, WAV), Wave64, CAF -------------------------------------------------------


def _riff(f: BinaryIO, size: int) -> str | None:
    """RIFF chunks (an AVI over 1 GiB has several, RIFF AVI then RIFF AVIX)."""
    offset = 0
    while offset + 8 <= size:
        ident, length = struct.unpack("<4sI", _read_at(f, offset, 8))
        if ident != b"RIFF" and offset == 0:
            return None
        if length in (0, 0xFFFFFFFF):  # a streamed WAV: its size was never written
            return None
        if ident not in (b"RIFF", b"JUNK", b"LIST"):
            return None  # trailing bytes the demuxer ignores
        # A missing pad byte after an odd-sized last chunk is common and harmless.
        if offset + 8 + length > size:
            return (
                f"the file ends inside its {ident.decode()} chunk, which declares "
                f"{length:,} bytes and holds {size - offset - 8:,}"
            )
        offset += 8 + length + (length & 1)
    return None


_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")


def _w64(f: BinaryIO, size: int) -> str | None:
    head = f.read(24)
    if head[:16] != _W64_RIFF:
        return None
    length = struct.unpack("<Q", head[16:24])[0]
    if length > size:
        return f"its header declares {length:,} bytes and the file has {size:,}"
    return None


def _caf(f: BinaryIO, size: int) -> str | None:
    """CAF chunks: type and a 64-bit size (-1 for a final data chunk of unknown size)."""
    if f.read(4) != b"caff":
        return None
    offset = 8
    while offset + 12 <= size:
        kind, length = struct.unpack(">4sq", _read_at(f, offset, 12))
        if length < 0:  # -1: a final data chunk of unknown size
            return None
        if offset + 12 + length > size:
            return (
                f"the file ends inside its {kind.decode('latin-1')!r} chunk, which declares "
                f"{length:,} bytes and holds {size - offset - 12:,}"
            )
        offset += 12 + length
    return None


# -- FLV ----------------------------------------------------------------------------------


def _flv(f: BinaryIO, size: int) -> str | None:
    """Tags, each an 11-byte header, its data and the size of the tag before the next.

    The whole file is walked (one small read per tag, as the demuxer reads each packet):
    the size at its end is not trusted, some writers get it wrong."""
    head = f.read(9)
    if head[:3] != b"FLV":
        return None
    offset = struct.unpack(">I", head[5:9])[0] + 4  # the header, then PreviousTagSize0
    while offset < size:
        tag = _read_at(f, offset, 11)
        if len(tag) < 11:
            return "the file ends inside the header of its last tag"
        length = int.from_bytes(tag[1:4], "big")
        end = offset + 11 + length + 4
        if end > size:
            return (
                f"the file ends inside its last tag, which declares {length:,} bytes "
                f"and holds {max(0, size - offset - 11):,}"
            )
        offset = end
    return None


# -- MXF ----------------------------------------------------------------------------------

_PARTITION = bytes.fromhex("060e2b34020501010d01020101")  # then kind, status, 00


def _ber(data: bytes, at: int) -> tuple[int, int]:
    first = data[at]
    if first < 0x80:
        return first, 1
    n = first & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + n], "big"), 1 + n


def _mxf(f: BinaryIO, size: int) -> str | None:
    """The header partition points at the footer partition once the file is complete."""
    head = f.read(65536 + 64)
    start = head.find(_PARTITION)  # after a run-in, if any
    if start < 0 or head[start + 13] != 0x02:
        return None
    length, n = _ber(head, start + 16)
    value = head[start + 16 + n : start + 16 + n + length]
    footer = struct.unpack(">Q", value[24:32])[0]
    if footer == 0:
        return None  # an open header: the writer never came back to fill it in
    at = start + footer
    key = _read_at(f, at, 16)
    if at + 16 > size or not (key[:13] == _PARTITION and key[13] == 0x04):
        return f"the file ends before its footer partition (declared at byte {at:,})"
    return None


# -- MPEG transport and program streams ---------------------------------------------------


def _ts_stride(f: BinaryIO) -> tuple[int, int] | None:
    """(packet size, offset of the sync byte in a packet), or None if not a TS."""
    f.seek(0)
    head = f.read(1024)
    for stride, sync in ((188, 0), (192, 4), (204, 0)):
        if all(len(head) > sync + k * stride and head[sync + k * stride] == 0x47 for k in (0, 1)):
            return stride, sync
    return None


def _ts_last_pes(
    f: BinaryIO, size: int, stride: int, sync: int
) -> dict[int, tuple[int, int, bool]]:
    """For each PID that carries PES in the tail: its last PES's declared length (0 for
    an open-ended one), the bytes of it in the file, and whether the file's last packet
    of that PID ends in stuffing (how a whole PES ends inside a full packet)."""
    window = min(size, TAIL - TAIL % stride)
    tail = _read_at(f, size - window, window)
    last: dict[int, tuple[int, int, bool]] = {}
    for at in range(sync, window, stride):
        packet = tail[at : at + 188]
        if packet[0] != 0x47:
            raise ValueError("lost sync")
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        control = packet[3] >> 4 & 3
        field = packet[4] if control & 2 else -1  # adaptation field length
        stuffed = field >= 0 and _stuffing(packet[5 : 5 + field]) > 0
        if not control & 1:
            continue  # no payload
        payload = packet[5 + field :] if field >= 0 else packet[4:]
        if packet[1] & 0x40 and payload[:3] == b"\0\0\x01":
            last[pid] = (int.from_bytes(payload[4:6], "big"), len(payload), stuffed)
        elif pid in last:
            declared, seen, _ = last[pid]
            last[pid] = (declared, seen + len(payload), stuffed)
    return last


def _stuffing(field: bytes) -> int:
    """Stuffing bytes in an adaptation field (after its flags and optional fields);
    a field of length 0 is itself one byte of stuffing."""
    if not field:
        return 1
    flags, at = field[0], 1
    at += 6 if flags & 0x10 else 0  # PCR
    at += 6 if flags & 0x08 else 0  # OPCR
    at += 1 if flags & 0x04 else 0  # splice countdown
    if flags & 0x02 and at < len(field):  # private data
        at += 1 + field[at]
    if flags & 0x01 and at < len(field):  # extension
        at += 1 + field[at]
    return len(field) - at


def _ts(f: BinaryIO, size: int) -> str | None:
    """188-byte packets (192 in M2TS, 204 with FEC); the last PES of each stream that
    declares its length must be whole (video PES usually do not: see `open_ended`)."""
    found = _ts_stride(f)
    if found is None:
        return None
    stride, sync = found
    if size % stride:
        return (
            f"the file ends inside a transport stream packet: {size:,} bytes are not a "
            f"whole number of {stride}-byte packets ({size % stride} bytes over)"
        )
    for pid, (declared, seen, _) in sorted(_ts_last_pes(f, size, stride, sync).items()):
        if declared and seen < declared + 6:
            return (
                f"the file ends inside a PES packet of stream PID {pid} "
                f"({seen:,} of its {declared + 6:,} bytes)"
            )
    return None


def open_ended(f: BinaryIO, size: int, format_name: str) -> set[int] | None:
    """The streams (by container id: a TS PID) whose last packet may be cut although
    the structure is whole, or None for all of them; empty when the structure vouches
    for every stream's end.

    A transport stream's video PES usually declares no length: it ends where the next
    begins, so the file's last one ends with the file. A whole one ends in stuffing
    (the packet it fills partly is padded), unless it fills its last packet exactly,
    one time in 184. A program stream cut between packs looks whole. For these, the
    streams' end times are the evidence left (`reelay.media.probe` weighs them)."""
    try:
        if format_name == "mpeg":
            return None
        if format_name == "mpegts" and (found := _ts_stride(f)) is not None:
            last = _ts_last_pes(f, size, *found)
            return {
                pid for pid, (declared, _, stuffed) in last.items() if not declared and not stuffed
            }
    except (ValueError, IndexError):
        pass
    return set()


def _ps(f: BinaryIO, size: int) -> str | None:
    """From the last pack header on, every packet declares its length."""
    window = min(size, TAIL)
    tail = _read_at(f, size - window, window)
    at = tail.rfind(b"\0\0\x01\xba")
    if at < 0:
        return None
    # MPEG-2 pack header: 14 bytes and its stuffing; MPEG-1: 12 bytes.
    if len(tail) < at + 14:
        return "the file ends inside its last pack header"
    at += 14 + (tail[at + 13] & 7) if tail[at + 4] >> 6 == 1 else 12
    while at < window:
        if window - at < 6:
            return "the file ends inside the header of its last packet"
        if tail[at : at + 3] != b"\0\0\x01":
            return None  # not where a packet should start: leave it to the demuxer
        code = tail[at + 3]
        if code == 0xB9:  # program end
            return None
        if code < 0xBB:
            return None
        length = int.from_bytes(tail[at + 4 : at + 6], "big")
        if at + 6 + length > window:
            return (
                f"the file ends inside its last packet (stream 0x{code:02X}), which "
                f"declares {length + 6:,} bytes and holds {window - at:,}"
            )
        at += 6 + length
    return None


# -- Ogg ------------------------------------------------------------------------------------


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected), checksum field zeroed."""
    crc = 0
    for byte in page[:22] + b"\0\0\0\0" + page[26:]:
        crc = (crc << 8) ^ _OGG_TABLE[(crc >> 24) ^ byte]
        crc &= 0xFFFFFFFF
    return crc


def _ogg_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_TABLE = _ogg_table()


def _ogg(f: BinaryIO, size: int) -> str | None:
    """The last page (found by its checksum) must end the file and end its stream."""
    window = min(size, 65536 * 2)
    tail = _read_at(f, size - window, window)
    at = tail.rfind(b"OggS")
    while at >= 0:
        if len(tail) >= at + 27:
            segments = tail[at + 27 : at + 27 + tail[at + 26]]
            end = at + 27 + len(segments) + sum(segments)
            page = tail[at:end]
            crc = struct.unpack("<I", tail[at + 22 : at + 26])[0]
            if end <= window and len(segments) == tail[at + 26] and _ogg_crc(page) == crc:
                if end < window:
                    return f"the file ends inside an Ogg page ({window - end:,} bytes of it)"
                if not tail[at + 5] & 4:
                    return "its last Ogg page does not end its stream (no end-of-stream flag)"
                return None
        at = tail.rfind(b"OggS", 0, at)
    return None


# -- ASF ------------------------------------------------------------------------------------

_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_ASF_FILE_PROPERTIES = bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365")


def _asf(f: BinaryIO, size: int) -> str | None:
    """The file properties object declares the file's size (unless broadcast)."""
    head = f.read(30)
    if head[:16] != _ASF_HEADER:
        return None
    header = _read_at(f, 30, min(struct.unpack("<Q", head[16:24])[0], 1 << 20))
    at = 0
    while at + 24 <= len(header):
        guid, length = header[at : at + 16], struct.unpack("<Q", header[at + 16 : at + 24])[0]
        if guid == _ASF_FILE_PROPERTIES:
            declared = struct.unpack("<Q", header[at + 40 : at + 48])[0]
            broadcast = struct.unpack("<I", header[at + 88 : at + 92])[0] & 1
            if not broadcast and declared > size:
                return f"its header declares {declared:,} bytes and the file has {size:,}"
            return None
        if length < 24:
            return None
        at += length
    return None


# -- MP3 --------------------------------------------------------------------------------------


def _mp3(f: BinaryIO, size: int) -> str | None:
    """A Xing/Info header (LAME and ffmpeg write one) declares the stream's bytes."""
    head = f.read(10)
    start = 0
    if head[:3] == b"ID3":
        start = 10 + int.from_bytes(bytes(b & 0x7F for b in head[6:10]), "big")
    frame = _read_at(f, start, 200)
    if len(frame) < 4 or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0:
        return None
    mpeg1 = frame[1] >> 3 & 3 == 3
    mono = frame[3] >> 6 == 3
    at = 4 + (17 if mono else 32) if mpeg1 else 4 + (9 if mono else 17)
    if frame[at : at + 4] not in (b"Xing", b"Info"):
        return None
    flags = struct.unpack(">I", frame[at + 4 : at + 8])[0]
    if not flags & 2:
        return None
    declared = struct.unpack(">I", frame[at + 8 + (4 if flags & 1 else 0) :][:4])[0]
    if start + declared > size:
        return (
            f"its Xing header declares {declared:,} bytes of audio and the file holds "
            f"{size - start:,}"
        )
    return None


# -- Elementary audio: MP3 and ADTS AAC frames ------------------------------------------------

_MP3_KBPS = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}


def _mp3_frame(data: bytes, at: int) -> int | None:
    """The length of the MPEG audio frame whose header is at ``at``, if it is one."""
    if len(data) < at + 4 or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version, layer = data[at + 1] >> 3 & 3, 4 - (data[at + 1] >> 1 & 3)
    rate_index, kbps_index = data[at + 2] >> 2 & 3, data[at + 2] >> 4
    if version == 1 or layer == 4 or rate_index == 3 or kbps_index in (0, 15):
        return None
    rate = (44100, 48000, 32000)[rate_index] >> {3: 0, 2: 1, 0: 2}[version]
    bitrate = _MP3_KBPS[(1 if version == 3 else 2, layer)][kbps_index] * 1000
    padding = data[at + 2] >> 1 & 1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (144 if layer == 2 or version == 3 else 72) * bitrate // rate + padding


def _adts_frame(data: bytes, at: int) -> int | None:
    if len(data) < at + 7 or data[at] != 0xFF or data[at + 1] & 0xF6 != 0xF0:
        return None
    length = (data[at + 3] & 3) << 11 | data[at + 4] << 3 | data[at + 5] >> 5
    return length if length >= 7 else None


def _frames_to_end(f: BinaryIO, size: int, frame: Callable[[bytes, int], int | None]) -> str | None:
    """Follow self-delimiting frames through the tail from the first place where three
    follow each other: the last must end with the file (or where an end tag starts)."""
    window = min(size, 1 << 16)
    tail = _read_at(f, size - window, window)
    for start in range(min(window, 1 << 13)):
        at, count = start, 0
        while (n := frame(tail, at)) is not None:
            at, count = at + n, count + 1
        if count < 3:
            continue
        if at > window:
            return "the file ends inside its last audio frame"
        rest = tail[at:]
        if at == window or rest[:3] == b"TAG" or rest[:8] == b"APETAGEX":
            return None
        if window - at < 7 and frame(tail + bytes(7), at) is not None:
            return "the file ends inside the header of its last audio frame"
    return None


def _mpeg_audio(f: BinaryIO, size: int) -> str | None:
    return _mp3(f, size) or _frames_to_end(f, size, _mp3_frame)


def _adts(f: BinaryIO, size: int) -> str | None:
    return _frames_to_end(f, size, _adts_frame)


def _y4m(f: BinaryIO, size: int) -> str | None:
    """YUV4MPEG: a header line, then frames of a size the header implies."""
    header = f.readline(1024)
    if not header.startswith(b"YUV4MPEG2 "):
        return None
    params = {p[:1]: p[1:] for p in header.split()[1:]}
    width, height = int(params[b"W"]), int(params[b"H"])
    space = params.get(b"C", b"420").decode()
    base = next((b for b in ("420", "422", "444", "411", "mono") if space.startswith(b)), None)
    if base is None:
        return None
    planes = {"420": 1.5, "411": 1.5, "422": 2.0, "444": 3.0, "mono": 1.0}[base]
    depth = 2 if "p1" in space else 1  # 420p10, 444p12...
    picture = int(width * height * planes) * depth
    offset = len(header)
    while offset < size:
        line = _read_at(f, offset, 256).split(b"\n", 1)[0]
        if not line.startswith(b"FRAME"):
            return None
        offset += len(line) + 1 + picture
        if offset > size:
            return f"the file ends inside its last frame of {picture:,} bytes"
    return None


# -- IVF, YUV4MPEG --------------------------------------------------------------------------


def _ivf(f: BinaryIO, size: int) -> str | None:
    """Frames, each a 12-byte header declaring its size."""
    head = f.read(32)
    if head[:4] != b"DKIF":
        return None
    offset = struct.unpack("<H", head[6:8])[0]
    while offset < size:
        header = _read_at(f, offset, 12)
        if len(header) < 12:
            return "the file ends inside the header of its last frame"
        length = struct.unpack("<I", header[:4])[0]
        if offset + 12 + length > size:
            return (
                f"the file ends inside its last frame, which declares {length:,} bytes "
                f"and holds {size - offset - 12:,}"
            )
        offset += 12 + length
    return None


#: The first bytes of the containers with a check (for a file ffmpeg cannot open).
_MAGIC: tuple[tuple[bytes, _Checker], ...] = (
    (_EBML, _ebml),
    (b"RIFF", _riff),
    (_W64_RIFF, _w64),
    (b"caff", _caf),
    (b"FLV", _flv),
    (_PARTITION, _mxf),
    (b"\0\0\x01\xba", _ps),
    (b"OggS", _ogg),
    (_ASF_HEADER, _asf),
    (b"ID3", _mpeg_audio),
    (b"DKIF", _ivf),
    (b"YUV4MPEG2", _y4m),
)

#: ffmpeg's demuxer names (see `reelay.media._ffmpeg.SOURCE_FORMATS`) and their checks.
CHECKERS: dict[str, _Checker] = {
    "mov,mp4,m4a,3gp,3g2,mj2": _bmff,
    "matroska,webm": _ebml,
    "mpegts": _ts,
    "avi": _riff,
    "wav": _riff,
    "w64": _w64,
    "caf": _caf,
    "flv": _flv,
    "mxf": _mxf,
    "mpeg": _ps,
    "ogg": _ogg,
    "asf": _asf,
    "mp3": _mpeg_audio,
    "aac": _adts,
    "ivf": _ivf,
    "yuv4mpegpipe": _y4m,
}
