"""The picture size an H.264 stream declares: its sequence parameter set, read from the FLV
AVC sequence header (an AVCDecoderConfigurationRecord). Only what the size needs is decoded
(ITU-T H.264, 7.3.2.1.1); anything unreadable gives None, never an exception."""

from __future__ import annotations

# profile_idc values whose SPS carries chroma format, bit depths and scaling lists
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class _Bits:
    """Big-endian bit reader over an RBSP (emulation prevention bytes already removed)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._pos >> 3
        if byte >= len(self._data):
            raise ValueError("SPS ends early")
        value = (self._data[byte] >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        """Unsigned Exp-Golomb."""
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        """Signed Exp-Golomb."""
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _rbsp(nal: bytes) -> bytes:
    """The NAL unit's payload without its header byte and emulation prevention bytes."""
    out = bytearray()
    zeros = 0
    for byte in nal[1:]:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def sps_size(sps: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels, cropping applied, of one SPS NAL unit (header byte first)."""
    try:
        bits = _Bits(_rbsp(sps))
        profile = bits.bits(8)
        bits.bits(16)  # constraint flags, level
        bits.ue()  # seq_parameter_set_id
        chroma = 1
        if profile in _HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                bits.bit()  # separate_colour_plane_flag
            bits.ue()  # bit_depth_luma_minus8
            bits.ue()  # bit_depth_chroma_minus8
            bits.bit()  # qpprime_y_zero_transform_bypass_flag
            if bits.bit():  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma != 3 else 12):
                    if bits.bit():
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit()
            bits.se()
            bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue()  # max_num_ref_frames
        bits.bit()  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_units = bits.ue() + 1
        frame_mbs_only = bits.bit()
        if not frame_mbs_only:
            bits.bit()  # mb_adaptive_frame_field_flag
        bits.bit()  # direct_8x8_inference_flag
        width = width_mbs * 16
        height = height_units * 16 * (2 - frame_mbs_only)
        if bits.bit():  # frame_cropping_flag
            left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
            crop_x = 1 if chroma == 0 or chroma == 3 else 2
            crop_y = (1 if chroma in (0, 3) or chroma == 2 else 2) * (2 - frame_mbs_only)
            width -= (left + right) * crop_x
            height -= (top + bottom) * crop_y
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


def avc_config_size(record: bytes) -> tuple[int, int] | None:
    """(width, height) from an AVCDecoderConfigurationRecord's first SPS, or None."""
    if len(record) < 8 or record[0] != 1 or not record[5] & 0x1F:
        return None
    length = int.from_bytes(record[6:8], "big")
    sps = record[8 : 8 + length]
    if len(sps) != length or not sps or sps[0] & 0x1F != 7:
        return None
    return sps_size(sps)
