"""What a shared object needs, read from its ELF headers without loading it.

Three facts decide whether a binary can run on a slave and what must travel
with it: the machine it was built for, the libraries it needs (``DT_NEEDED``,
found through ``RUNPATH``/``RPATH``), and the newest glibc symbol version it
requires (the ``GLIBC_x.y`` entries of ``.gnu.version_r``).
"""
import struct

SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NEEDED, DT_RPATH, DT_RUNPATH = 1, 15, 29

# e_machine -> platform.machine() names that mean the same architecture.
MACHINES = {
    3: ("i386", "i486", "i586", "i686", "x86"),
    40: ("armv7l", "armv6l", "arm"),
    62: ("x86_64", "amd64"),
    183: ("aarch64", "arm64"),
    21: ("ppc64", "ppc64le"),
    22: ("s390x",),
    243: ("riscv64",),
}


class NotElf(ValueError):
    """The bytes are not a shared object this reader understands."""


class ElfFacts(object):
    def __init__(self, machine, bits, byteorder, needed, search, glibc):
        self.machine = machine  # e_machine number
        self.bits = bits
        self.byteorder = byteorder
        self.needed = needed  # sonames, in order
        self.search = search  # RUNPATH entries, else RPATH entries
        self.glibc = glibc  # newest required (major, minor), or None

    def runs_on(self, machine, bits, byteorder):
        names = MACHINES.get(self.machine, ())
        return machine.lower() in names and bits == self.bits and byteorder == self.byteorder


def _string(data, offset):
    end = data.index(b"\0", offset)
    return data[offset:end].decode("utf-8", "replace")


def read_elf(data):
    """Return the ElfFacts of ``data``, the bytes of a shared object."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise NotElf("not an ELF file")
    elf_class, encoding = struct.unpack_from("BB", data, 4)
    if elf_class not in (1, 2) or encoding not in (1, 2):
        raise NotElf("unknown ELF class or byte order")
    end = "<" if encoding == 1 else ">"
    bits = 32 if elf_class == 1 else 64
    if bits == 64:
        fields = struct.unpack_from(end + "HHIQQQIHHHHHH", data, 16)
        section_format = end + "IIQQQQIIQQ"
    else:
        fields = struct.unpack_from(end + "HHIIIIIHHHHHH", data, 16)
        section_format = end + "IIIIIIIIII"
    machine, section_offset, section_size, section_count = (
        fields[1], fields[5], fields[10], fields[11])
    sections = []
    for index in range(section_count):
        raw = struct.unpack_from(section_format, data, section_offset + index * section_size)
        # sh_type, sh_offset, sh_size, sh_link, sh_info
        sections.append((raw[1], raw[4], raw[5], raw[6], raw[7]))
    needed, search = _dynamic(data, sections, end, bits)
    return ElfFacts(machine, bits, "little" if encoding == 1 else "big", needed, search,
                    _newest_glibc(data, sections, end))


def _dynamic(data, sections, end, bits):
    entry = struct.Struct(end + ("qQ" if bits == 64 else "iI"))
    needed, runpath, rpath = [], [], []
    for kind, offset, size, link, _ in sections:
        if kind != SHT_DYNAMIC:
            continue
        strings = sections[link][1]
        for position in range(offset, offset + size, entry.size):
            tag, value = entry.unpack_from(data, position)
            if tag == 0:
                break
            if tag == DT_NEEDED:
                needed.append(_string(data, strings + value))
            elif tag == DT_RUNPATH:
                runpath.extend(_string(data, strings + value).split(":"))
            elif tag == DT_RPATH:
                rpath.extend(_string(data, strings + value).split(":"))
    return needed, [entry for entry in (runpath or rpath) if entry]


def _newest_glibc(data, sections, end):
    newest = None
    for kind, offset, _, link, count in sections:
        if kind != SHT_GNU_VERNEED:
            continue
        strings = sections[link][1]
        position = offset
        for _ in range(count):  # Verneed entries
            _, aux_count, _, aux, following = struct.unpack_from(end + "HHIII", data, position)
            aux_position = position + aux
            for _ in range(aux_count):  # Vernaux entries: one per required version
                _, _, _, name, aux_next = struct.unpack_from(end + "IHHII", data, aux_position)
                version = _glibc_version(_string(data, strings + name))
                if version and (newest is None or version > newest):
                    newest = version
                aux_position += aux_next
            if not following:
                break
            position += following
    return newest


def _glibc_version(name):
    """"GLIBC_2.14" -> (2, 14); anything else (GLIBC_PRIVATE, GCC_3.0) -> None."""
    if not name.startswith("GLIBC_"):
        return None
    parts = name[len("GLIBC_"):].split(".")
    if not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts[:2])
