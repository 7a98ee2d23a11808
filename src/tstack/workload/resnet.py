"""Op list of a bottleneck ResNet (ResNet-50 by default), the CNN the paper contrasts Transformers with.

Every conv is followed by BatchNorm; ReLU follows the first two convs of a block and the residual add. With
`fused=True`, BatchNorm is folded into the preceding conv (its ops disappear; the conv gains a bias) and ReLU is
applied in the conv/add epilogue (its op stays, with attr fused=1, so it costs FLOPs but no memory traffic).

Every op carries its identity: the stem's and head's ops their block and role, a bottleneck's ops also the block's
index counted over all stages (`Op.layer`); labels (``stage2.block1.conv2``) are derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tstack.workload.identity import Block, OpRole, Tensor
from tstack.workload.model import ResNetSpec
from tstack.workload.ops import Op, OpClass, Operand, OpKind, Role

# a conv's BatchNorm, by the conv's role
_BATCHNORM_OF = {
    OpRole.CONV: OpRole.BATCHNORM,
    OpRole.CONV1: OpRole.BN1,
    OpRole.CONV2: OpRole.BN2,
    OpRole.CONV3: OpRole.BN3,
    OpRole.DOWNSAMPLE: OpRole.DOWNSAMPLE_BN,
}
# labels within a block; a BatchNorm is labelled after its conv (``conv1.bn``)
_LABELS: dict[OpRole, str] = {
    OpRole.CONV: "conv",
    OpRole.RELU: "relu",
    OpRole.MAXPOOL: "maxpool",
    OpRole.AVGPOOL: "avgpool",
    OpRole.CLASSIFIER: "fc",
    OpRole.RESIDUAL: "residual",
    OpRole.CONV1: "conv1",
    OpRole.CONV2: "conv2",
    OpRole.CONV3: "conv3",
    OpRole.DOWNSAMPLE: "downsample",
    OpRole.RELU1: "relu1",
    OpRole.RELU2: "relu2",
    OpRole.RELU3: "relu3",
    **{bn: f"{conv.value}.bn" for conv, bn in _BATCHNORM_OF.items()},
}


@dataclass(frozen=True, slots=True)
class _At:
    """Where an op sits: its block and role, and for a bottleneck its stage, index in the stage and index overall."""

    block: Block
    role: OpRole
    stage: int | None = None  # 0-based
    index_in_stage: int | None = None
    layer: int | None = None  # the bottleneck's index over all stages

    def with_role(self, role: OpRole) -> _At:
        return _At(self.block, role, self.stage, self.index_in_stage, self.layer)

    @property
    def label(self) -> str:
        """The printed name: ``stem.conv``, ``stage1.block0.conv1.bn``, ``head.fc`` (stages count from 1)."""
        if self.stage is not None:
            return f"stage{self.stage + 1}.block{self.index_in_stage}.{_LABELS[self.role]}"
        return f"{self.block.value}.{_LABELS[self.role]}"

    def op(
        self,
        kind: OpKind,
        op_class: OpClass,
        dims: tuple[tuple[str, int], ...],
        operands: tuple[Operand, ...],
        attrs: tuple[tuple[str, int], ...] = (),
    ) -> Op:
        return Op(
            self.label, kind, op_class, dims, operands, attrs=attrs, block=self.block, role=self.role, layer=self.layer
        )


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

    def conv(self, at: _At, c_in: int, c_out: int, kernel: int, stride: int, size_in: int, *, norm: bool = True) -> int:
        pad = kernel // 2
        size_out = (size_in + 2 * pad - kernel) // stride + 1
        operands = [
            Operand(Tensor.ACTIVATION, Role.INPUT, ("N", "C", "H", "W"), self.ab),
            Operand(Tensor.WEIGHT, Role.WEIGHT, ("K", "C", "R", "S"), self.wb),
        ]
        if self.fused:
            operands.append(Operand(Tensor.BIAS, Role.BIAS, ("K",), self.wb))  # the folded BatchNorm shift
        operands.append(Operand(Tensor.OUTPUT, Role.OUTPUT, ("N", "K", "P", "Q"), self.ab))
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
        self.ops.append(at.op(OpKind.CONV, OpClass.CONV, dims, tuple(operands), attrs=(("stride", stride),)))
        if norm and not self.fused:
            bn = at.with_role(_BATCHNORM_OF[at.role])
            self.channelwise(bn, OpKind.BATCHNORM, OpClass.BATCHNORM, c_out, size_out, params=2)
        return size_out

    def channelwise(
        self,
        at: _At,
        kind: OpKind,
        op_class: OpClass,
        channels: int,
        size: int,
        *,
        n_inputs: int = 1,
        params: int = 0,
        fused: bool = False,
    ) -> None:
        operands = [Operand(Tensor.ACTIVATION, Role.INPUT, ("N", "C", "P", "Q"), self.ab) for _ in range(n_inputs)]
        operands += [Operand(Tensor.PARAMETER, Role.WEIGHT, ("C",), self.wb) for _ in range(params)]
        operands.append(Operand(Tensor.OUTPUT, Role.OUTPUT, ("N", "C", "P", "Q"), self.ab))
        dims = (("N", self.batch), ("C", channels), ("P", size), ("Q", size))
        attrs = (("fused", 1),) if fused else ()
        self.ops.append(at.op(kind, op_class, dims, tuple(operands), attrs=attrs))

    def relu(self, at: _At, channels: int, size: int) -> None:
        self.channelwise(at, OpKind.RELU, OpClass.ACTIVATION, channels, size, fused=self.fused)

    def pool(self, at: _At, kind: OpKind, channels: int, size_in: int, size_out: int, window: int) -> None:
        """A max- or average-pool over `window` x `window` (a max-pool with stride 2, the average pool global)."""
        dims = (
            ("N", self.batch),
            ("C", channels),
            ("P", size_out),
            ("Q", size_out),
            ("R", window),
            ("S", window),
            ("H", size_in),
            ("W", size_in),
        )
        operands = (
            Operand(Tensor.ACTIVATION, Role.INPUT, ("N", "C", "H", "W"), self.ab),
            Operand(Tensor.OUTPUT, Role.OUTPUT, ("N", "C", "P", "Q"), self.ab),
        )
        attrs = (("stride", 2),) if kind is OpKind.MAXPOOL else ()
        self.ops.append(at.op(kind, OpClass.OTHER, dims, operands, attrs=attrs))

    def build(self) -> tuple[Op, ...]:
        s = self.spec
        stem = _At(Block.STEM, OpRole.CONV)
        size = self.conv(stem, s.in_channels, s.base_width, 7, 2, s.image_px, norm=not self.paper)
        if not self.paper:
            self.relu(stem.with_role(OpRole.RELU), s.base_width, size)
        pooled = (size + 2 - 3) // 2 + 1
        self.pool(stem.with_role(OpRole.MAXPOOL), OpKind.MAXPOOL, s.base_width, size, pooled, 3)
        size, c_in = pooled, s.base_width
        stride_in_3x3 = s.stride_in_3x3 and not self.paper
        layer = 0
        for stage, n_blocks in enumerate(s.blocks_per_stage):
            width = s.base_width * 2**stage
            c_out = width * s.expansion
            for block in range(n_blocks):
                stride = 2 if (block == 0 and stage > 0) else 1
                at = _At(Block.BOTTLENECK, OpRole.CONV1, stage, block, layer).with_role
                s1, s2 = (1, stride) if stride_in_3x3 else (stride, 1)
                # the paper's Tables 4 and 12 count the first stage's first block as if it took 4x width inputs
                block_in = c_out if (self.paper and stage == 0 and block == 0) else c_in
                mid = self.conv(at(OpRole.CONV1), block_in, width, 1, s1, size)
                self.relu(at(OpRole.RELU1), width, mid)
                out = self.conv(at(OpRole.CONV2), width, width, 3, s2, mid)
                self.relu(at(OpRole.RELU2), width, out)
                self.conv(at(OpRole.CONV3), width, c_out, 1, 1, out)
                if block == 0 and not self.paper:
                    self.conv(at(OpRole.DOWNSAMPLE), c_in, c_out, 1, stride, size)
                self.channelwise(at(OpRole.RESIDUAL), OpKind.ADD, OpClass.RESIDUAL, c_out, out, n_inputs=2)
                self.relu(at(OpRole.RELU3), c_out, out)
                size, c_in = out, c_out
                layer += 1
        head = _At(Block.HEAD, OpRole.AVGPOOL)
        if not self.paper:
            self.pool(head, OpKind.AVGPOOL, c_in, size, 1, size)
        self.ops.append(
            head.with_role(OpRole.CLASSIFIER).op(
                OpKind.MATMUL,
                OpClass.OTHER,
                (("B", 1), ("M", self.batch), ("N", s.num_classes), ("K", c_in)),
                (
                    Operand(Tensor.ACTIVATION, Role.INPUT, ("M", "K"), self.ab),
                    Operand(Tensor.WEIGHT, Role.WEIGHT, ("K", "N"), self.wb),
                    Operand(Tensor.BIAS, Role.BIAS, ("N",), self.wb),
                    Operand(Tensor.OUTPUT, Role.OUTPUT, ("M", "N"), self.ab),
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
