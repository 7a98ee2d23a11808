"""Op list of a bottleneck ResNet (ResNet-50 by default), the CNN the paper contrasts Transformers with.

Every conv is followed by BatchNorm; ReLU follows the first two convs of a block and the residual add. With
`fused=True`, BatchNorm is folded into the preceding conv (its ops disappear; the conv gains a bias) and ReLU is
applied in the conv/add epilogue (its op stays, with attr fused=1, so it costs FLOPs but no memory traffic).
"""

from __future__ import annotations

from tstack.workload.model import ResNetSpec
from tstack.workload.ops import Op, OpClass, Operand, OpKind, Role


class _ResNetBuilder:
    def __init__(
        self, spec: ResNetSpec, *, batch: int, weight_bits: int, act_bits: int, fused: bool, paper_layers: bool
    ) -> None:
        self.spec = spec
        self.paper = paper_layers
        self.batch = batch
        self.wb = weight_bits
        self.ab = act_bits
        self.fused = fused
        self.ops: list[Op] = []

    def conv(
        self, name: str, c_in: int, c_out: int, kernel: int, stride: int, size_in: int, *, norm: bool = True
    ) -> int:
        pad = kernel // 2
        size_out = (size_in + 2 * pad - kernel) // stride + 1
        operands = [
            Operand("x", Role.INPUT, ("N", "C", "H", "W"), self.ab),
            Operand("w", Role.WEIGHT, ("K", "C", "R", "S"), self.wb),
        ]
        if self.fused:
            operands.append(Operand("b", Role.BIAS, ("K",), self.wb))  # the folded BatchNorm shift
        operands.append(Operand("y", Role.OUTPUT, ("N", "K", "P", "Q"), self.ab))
        dims = (
            ("N", self.batch),
            ("K", c_out),
            ("C", c_in),
            ("P", size_out),
            ("Q", size_out),
            ("R", kernel),
            ("S", kernel),
            ("H", size_in),
            ("W", size_in),
        )
        self.ops.append(Op(name, OpKind.CONV, OpClass.CONV, dims, tuple(operands), attrs=(("stride", stride),)))
        if norm and not self.fused:
            self.channelwise(f"{name}.bn", OpKind.BATCHNORM, OpClass.BATCHNORM, c_out, size_out, params=2)
        return size_out

    def channelwise(
        self,
        name: str,
        kind: OpKind,
        op_class: OpClass,
        channels: int,
        size: int,
        *,
        n_inputs: int = 1,
        params: int = 0,
        fused: bool = False,
    ) -> None:
        operands = [Operand(f"x{i}", Role.INPUT, ("N", "C", "P", "Q"), self.ab) for i in range(n_inputs)]
        operands += [Operand(f"p{i}", Role.WEIGHT, ("C",), self.wb) for i in range(params)]
        operands.append(Operand("y", Role.OUTPUT, ("N", "C", "P", "Q"), self.ab))
        dims = (("N", self.batch), ("C", channels), ("P", size), ("Q", size))
        attrs = (("fused", 1),) if fused else ()
        self.ops.append(Op(name, kind, op_class, dims, tuple(operands), attrs=attrs))

    def relu(self, name: str, channels: int, size: int) -> None:
        self.channelwise(name, OpKind.RELU, OpClass.ACTIVATION, channels, size, fused=self.fused)

    def build(self) -> tuple[Op, ...]:
        s = self.spec
        size = self.conv("stem.conv", s.in_channels, s.base_width, 7, 2, s.image_px, norm=not self.paper)
        if not self.paper:
            self.relu("stem.relu", s.base_width, size)
        pooled = (size + 2 - 3) // 2 + 1
        self.ops.append(
            Op(
                "stem.maxpool",
                OpKind.MAXPOOL,
                OpClass.OTHER,
                (
                    ("N", self.batch),
                    ("C", s.base_width),
                    ("P", pooled),
                    ("Q", pooled),
                    ("R", 3),
                    ("S", 3),
                    ("H", size),
                    ("W", size),
                ),
                (
                    Operand("x", Role.INPUT, ("N", "C", "H", "W"), self.ab),
                    Operand("y", Role.OUTPUT, ("N", "C", "P", "Q"), self.ab),
                ),
                attrs=(("stride", 2),),
            )
        )
        size, c_in = pooled, s.base_width
        stride_in_3x3 = s.stride_in_3x3 and not self.paper
        for stage, n_blocks in enumerate(s.blocks_per_stage):
            width = s.base_width * 2**stage
            c_out = width * s.expansion
            for block in range(n_blocks):
                stride = 2 if (block == 0 and stage > 0) else 1
                p = f"stage{stage + 1}.block{block}"
                s1, s2 = (1, stride) if stride_in_3x3 else (stride, 1)
                # the paper's Tables 4 and 12 count the first stage's first block as if it took 4x width inputs
                block_in = c_out if (self.paper and stage == 0 and block == 0) else c_in
                mid = self.conv(f"{p}.conv1", block_in, width, 1, s1, size)
                self.relu(f"{p}.relu1", width, mid)
                out = self.conv(f"{p}.conv2", width, width, 3, s2, mid)
                self.relu(f"{p}.relu2", width, out)
                self.conv(f"{p}.conv3", width, c_out, 1, 1, out)
                if block == 0 and not self.paper:
                    self.conv(f"{p}.downsample", c_in, c_out, 1, stride, size)
                self.channelwise(f"{p}.residual", OpKind.ADD, OpClass.RESIDUAL, c_out, out, n_inputs=2)
                self.relu(f"{p}.relu3", c_out, out)
                size, c_in = out, c_out
        if not self.paper:
            self.ops.append(
                Op(
                    "head.avgpool",
                    OpKind.AVGPOOL,
                    OpClass.OTHER,
                    (
                        ("N", self.batch),
                        ("C", c_in),
                        ("P", 1),
                        ("Q", 1),
                        ("R", size),
                        ("S", size),
                        ("H", size),
                        ("W", size),
                    ),
                    (
                        Operand("x", Role.INPUT, ("N", "C", "H", "W"), self.ab),
                        Operand("y", Role.OUTPUT, ("N", "C", "P", "Q"), self.ab),
                    ),
                )
            )
        self.ops.append(
            Op(
                "head.fc",
                OpKind.MATMUL,
                OpClass.OTHER,
                (("B", 1), ("M", self.batch), ("N", s.num_classes), ("K", c_in)),
                (
                    Operand("x", Role.INPUT, ("M", "K"), self.ab),
                    Operand("w", Role.WEIGHT, ("K", "N"), self.wb),
                    Operand("b", Role.BIAS, ("N",), self.wb),
                    Operand("y", Role.OUTPUT, ("M", "N"), self.ab),
                ),
            )
        )
        return tuple(self.ops)


def resnet_ops(
    spec: ResNetSpec,
    *,
    batch: int = 1,
    weight_bits: int = 8,
    act_bits: int = 8,
    fused: bool = False,
    paper_layers: bool = False,
) -> tuple[Op, ...]:
    """The op list; `paper_layers` gives the layer list the paper's Tables 4 and 12 count (reverse-engineered):
    ResNet v1 strides (on the first 1x1 of a stage), no projection-shortcut convs, no BatchNorm or ReLU after the
    stem conv, no average pool, and the first stage's first block counted with 4x width inputs."""
    return _ResNetBuilder(
        spec, batch=batch, weight_bits=weight_bits, act_bits=act_bits, fused=fused, paper_layers=paper_layers
    ).build()
