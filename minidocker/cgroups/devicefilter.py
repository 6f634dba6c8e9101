"""The device allow-list as an eBPF program: cgroup v2's devices "controller" (chapter 1).

cgroup v2 has no devices.allow file.  Instead a program of type
BPF_PROG_TYPE_CGROUP_DEVICE is attached to the cgroup, and before a process
in it opens (or mknods) a device node the kernel runs the program on a small
record, ``struct bpf_cgroup_dev_ctx`` (linux/bpf.h)::

    offset 0   u32 access_type   low 16 bits: the type   (1 = block, 2 = char)
                                 high 16 bits: the access (1 = mknod, 2 = read, 4 = write)
    offset 4   u32 major
    offset 8   u32 minor

The program's answer, in register r0, is 1 (allow) or 0 (deny: EPERM).  Its
code is eBPF: a tiny machine with eleven 64-bit registers; r1 holds the
address of the record on entry.  The kernel's verifier checks the program when
it is loaded (no loops, no stray memory access), then runs it compiled to
native code.  This module writes the program by hand from the rule list, one
block per rule, exactly as runc's devicefilter does::

    r2 = type; r3 = access; r4 = major; r5 = minor
    if type == c and major == 1 and minor == 3 and access in rwm: return 1    (block 1: /dev/null)
    if type == c and major == 5 and minor == 2 and access in rwm: return 1    (block 2: /dev/ptmx)
    ...
    return 0                                                                   (nothing allowed it)

Each ``and`` is a conditional jump *over the rest of the block* when it does
not hold ("if r2 != 2 goto next block").  A rule's ``*`` leaves its test out.

Each instruction is 8 bytes (linux/bpf.h, ``struct bpf_insn``): an opcode,
two 4-bit register numbers (destination in the low half, source in the high
half, on a little-endian machine), a signed 16-bit offset (how many
instructions a jump skips) and a signed 32-bit immediate value.
"""

import struct

# Opcodes (linux/bpf_common.h, linux/bpf.h): an instruction class, an operation, a source.
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W : dst = *(u32 *)(src + off)
ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K : dst &= imm    (32-bit)
ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K : dst >>= imm   (32-bit)
ALU32_MOV_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K : dst = imm     (32-bit)
ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X : dst = src     (32-bit)
JMP_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K : if dst != imm goto +off
JMP_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X : if dst != src goto +off
JMP_EXIT = 0x95  # BPF_JMP | BPF_EXIT : return r0

# The values in the record (BPF_DEVCG_DEV_*, BPF_DEVCG_ACC_*).
DEVICE_TYPE = {"b": 1, "c": 2}
ACCESS_BIT = {"m": 1, "r": 2, "w": 4}

TYPE, ACCESS, MAJOR, MINOR, SCRATCH = 2, 3, 4, 5, 1  # the registers the program keeps them in
NEXT = "next"  # a jump's target before it is known: the start of the next block


class Instruction:
    """One eBPF instruction, with the line of pseudo-code it stands for."""

    def __init__(self, opcode: int, dst: int = 0, src: int = 0, off: int | str = 0, imm: int = 0, says: str = ""):
        self.opcode, self.dst, self.src, self.off, self.imm, self.says = opcode, dst, src, off, imm, says

    def encode(self) -> bytes:
        """The 8 bytes of struct bpf_insn (little-endian: x86_64, arm64)."""
        return struct.pack("<BBhi", self.opcode, self.src << 4 | self.dst, self.off, self.imm)

    def __repr__(self) -> str:
        return f"<{self.opcode:#04x} r{self.dst} r{self.src} {self.off:+} {self.imm}: {self.says}>"


def _prologue() -> list[Instruction]:
    """Unpack the record into registers: r2 = type, r3 = access, r4 = major, r5 = minor."""
    return [
        Instruction(LDX_MEM_W, TYPE, 1, 0, 0, "r2 = ctx->access_type"),
        Instruction(ALU32_AND_K, TYPE, 0, 0, 0xFFFF, "r2 &= 0xffff: the device type"),
        Instruction(LDX_MEM_W, ACCESS, 1, 0, 0, "r3 = ctx->access_type"),
        Instruction(ALU32_RSH_K, ACCESS, 0, 0, 16, "r3 >>= 16: the access asked for"),
        Instruction(LDX_MEM_W, MAJOR, 1, 4, 0, "r4 = ctx->major"),
        Instruction(LDX_MEM_W, MINOR, 1, 8, 0, "r5 = ctx->minor"),
    ]


def _return(value: int, says: str) -> list[Instruction]:
    return [Instruction(ALU32_MOV_K, 0, 0, 0, value, f"r0 = {value}"), Instruction(JMP_EXIT, says=says)]


def _block(rule) -> list[Instruction]:
    """"If the device matches `rule` and the access is within its letters, return 1", else fall through."""
    block = []
    if rule.kind != "a":  # "a": every type
        block.append(Instruction(JMP_JNE_K, TYPE, 0, NEXT, DEVICE_TYPE[rule.kind], f"if type != {rule.kind} goto next"))
    if set(rule.access) != set("rwm"):  # rwm grants any access: no test needed
        mask = sum(ACCESS_BIT[letter] for letter in rule.access)
        block += [Instruction(ALU32_MOV_X, SCRATCH, ACCESS, 0, 0, "r1 = r3"),
                  Instruction(ALU32_AND_K, SCRATCH, 0, 0, mask, f"r1 &= {mask} ({rule.access})"),
                  Instruction(JMP_JNE_X, SCRATCH, ACCESS, NEXT, 0, f"if access is not within {rule.access} goto next")]
    if rule.major is not None:
        block.append(Instruction(JMP_JNE_K, MAJOR, 0, NEXT, rule.major, f"if major != {rule.major} goto next"))
    if rule.minor is not None:
        block.append(Instruction(JMP_JNE_K, MINOR, 0, NEXT, rule.minor, f"if minor != {rule.minor} goto next"))
    block += _return(1, f"allow: {rule} ({rule.what})" if rule.what else f"allow: {rule}")
    for index, instruction in enumerate(block):
        if instruction.off == NEXT:  # a jump counts from the instruction after it
            instruction.off = len(block) - index - 1
    return block


def assemble(rules) -> list[Instruction]:
    """The program for an allow-list (devices.Rule objects): deny whatever no rule allows."""
    program = _prologue()
    for rule in rules:
        program += _block(rule)
    return program + _return(0, "deny: no rule allows it")


def encode(program: list[Instruction]) -> bytes:
    """The program as the bytes BPF_PROG_LOAD takes."""
    return b"".join(instruction.encode() for instruction in program)


def listing(program: list[Instruction]) -> str:
    """The program one instruction a line, with what each does: for reading, in the notebook or a shell."""
    return "\n".join(f"{index:3}  {instruction.encode().hex(' ')}   {instruction.says}"
                     for index, instruction in enumerate(program))
