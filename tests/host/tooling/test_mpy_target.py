"""Deploy compiles .mpy the target loads: MicroPython 1.13 refuses an .mpy whose header flags
(cached map lookups, unicode strings, small-int bits) differ from its build's."""
import os

from tools.device import deploy


def _header(tmp_path, mpy):
    source = tmp_path / "m.py"
    source.write_text("VALUE = 1\n")
    version, options = deploy.mpy_target(mpy)
    compiled = deploy.compile_mpy([("/usr/m.py", str(source))], deploy.find_mpy_cross(version),
                                  cache_dir=str(tmp_path / "cache"), options=options)
    assert [path for path, _ in compiled] == ["/usr/m.mpy"]
    return compiled[0][1][:4]


def test_quecpython_firmware_gets_v5_without_cached_lookups_or_unicode(tmp_path):
    # A firmware that does not report its .mpy is taken as QuecPython's: its port config
    # leaves MICROPY_OPT_CACHE_MAP_LOOKUP_IN_BYTECODE and STR_UNICODE at 0; 31-bit small ints.
    assert _header(tmp_path, 0) == b"M\x05\x00\x1f"
    assert _header(tmp_path, 0x0405) == b"M\x05\x00\x1f"      # 1.13 reporting flags 0, x86


def test_flags_the_device_reports_are_followed(tmp_path):
    assert _header(tmp_path, 0x0005 | (deploy.MPY_V5_CACHE_LOOKUP << 8)) == b"M\x05\x01\x1f"
    assert _header(tmp_path, 0x0005 | (deploy.MPY_V5_UNICODE << 8)) == b"M\x05\x02\x1f"


def test_v6_targets_get_the_default_output(tmp_path):
    version, options = deploy.mpy_target(6)
    assert (version, options) == (6, [])


def test_compiled_files_are_cached_per_option_set(tmp_path):
    _header(tmp_path, 0)
    _header(tmp_path, 0x0005 | (deploy.MPY_V5_UNICODE << 8))
    assert len(os.listdir(str(tmp_path / "cache"))) == 2
