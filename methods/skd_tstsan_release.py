"""The SKD-TSTSAN release's checkpoint names mapped onto this harness's model.

The release (GuanghaoZhu663/SKD-TSTSAN, `all_model.py` and the magnification network's
`magnet.py`) saves whole state_dicts: its CK+-pretrained `Pretrained_model/SKD-TSTSAN.pth` and
per-subject `<exp>/<subject>/<subject>.pth`. Its modules are flat attributes named by block
and stream (`conv2_T`, `AC1_bn1_L`, `Aug_Encoder_S`...); the harness groups the same layers
by stream and block (`backbones.T.block2.0.conv`). The correspondence, a fact of the two
layouts (tests/methods/test_skd_tstsan_release.py builds a state_dict of the release's names
and shapes and checks that every tensor lands):

- magnifiers: `Aug_Encoder_X` -> `magnifiers.X.encoder.layers` (`cba_1`, `cba_2`, `resblks.i`,
  `motion_cba`, `motion_resblks.j` in order; each `conv2d` is a bias-free conv, a residual
  block's `cba_1` / `cba_2` its `body.0` / `body.2`); `Aug_Manipulator_X` ->
  `magnifiers.X.manipulator` (`g` -> `g.0`, `h_conv` -> `h.0`, `h_resblk` -> `h.1`);
- backbone: `conv1_X`/`bn1_X` -> `backbones.X.block1.0`, `conv2`/`conv3` -> `block2.0`/`block2.1`,
  `conv4`/`conv5` -> `block3.0`/`block3.1`; the L-stream's `ECA1`..`ECA5` the `eca` of those
  units; a temporally shifted conv's `.net` is the plain conv here (the shift has no weights);
- auxiliary classifiers: `AC{n}_conv{m}_X`/`AC{n}_bn{m}_X`/`AC{n}_ECA{m}` -> `auxiliary.{n-1}.X.
  body.{m-1}`; heads `AC1_fc`, `AC2_fc`, `fc2` -> `auxiliary_classifiers.0/1.linear`,
  `classifier.linear` (the keys the release drops, all containing "fc", when it transfers).
"""

from __future__ import annotations

import re

STREAMS = ("L", "S", "T")
_BLOCKS = {1: "block1.0", 2: "block2.0", 3: "block2.1", 4: "block3.0", 5: "block3.1"}
_ENCODER = {"cba_1": "0", "cba_2": "2", "motion_cba": "7"}
_HEADS = {"fc2": "classifier.linear", "AC1_fc": "auxiliary_classifiers.0.linear",
          "AC2_fc": "auxiliary_classifiers.1.linear"}


def is_release_layout(state: dict) -> bool:
    """Whether a state_dict is in the release's names (its final classifier `fc2`, its
    magnifier or first conv named the release's way), after any `module.` prefix."""
    return any(k.split(".")[0] in ("fc2", "conv1_L", "Aug_Encoder_L") for k in state)


def harness_name(name: str) -> str:
    """The harness's name of one of the release's tensors; a name it does not know is
    returned as it is (so it shows as unexpected, named, when the state is loaded)."""
    module, _, rest = name.partition(".")
    if module in _HEADS:
        return f"{_HEADS[module]}.{rest}"
    magnifier = re.fullmatch(r"Aug_(Encoder|Manipulator)_([LST])", module)
    if magnifier:
        part = _encoder_part if magnifier[1] == "Encoder" else _manipulator_part
        mapped = part(rest)
        return (f"magnifiers.{magnifier[2]}.{magnifier[1].lower()}.{mapped}" if mapped
                else name)
    eca = re.fullmatch(r"(AC([12])_)?ECA([1-5])", module)
    if eca:
        unit = (f"auxiliary.{int(eca[2]) - 1}.L.body.{int(eca[3]) - 1}" if eca[1]
                else f"backbones.L.{_BLOCKS.get(int(eca[3]), '?')}")
        return f"{unit}.eca.{rest}"
    layer = re.fullmatch(r"(AC([12])_)?(conv|bn)([1-5])_([LST])", module)
    if not layer:
        return name
    rest = rest[len("net."):] if rest.startswith("net.") else rest  # a shifted conv's own
    auxiliary, kind, index, stream = layer[2], layer[3], int(layer[4]), layer[5]
    if auxiliary:
        if index > 2:
            return name
        return f"auxiliary.{int(auxiliary) - 1}.{stream}.body.{index - 1}.{kind}.{rest}"
    return f"backbones.{stream}.{_BLOCKS[index]}.{kind}.{rest}"


def _encoder_part(rest: str) -> str | None:
    """`cba_1.conv2d.weight` -> `layers.0.weight`; `resblks.1.cba_2.conv2d.weight` ->
    `layers.5.body.2.weight`; `motion_resblks.0...` -> `layers.9...`."""
    plain = re.fullmatch(r"(cba_1|cba_2|motion_cba)\.conv2d\.(\w+)", rest)
    if plain:
        return f"layers.{_ENCODER[plain[1]]}.{plain[2]}"
    block = re.fullmatch(r"(resblks|motion_resblks)\.(\d)\.cba_([12])\.conv2d\.(\w+)", rest)
    if block:
        first = 4 if block[1] == "resblks" else 9
        return (f"layers.{first + int(block[2])}.body.{0 if block[3] == '1' else 2}."
                f"{block[4]}")
    return None


def _manipulator_part(rest: str) -> str | None:
    """`g.conv2d.weight` -> `g.0.weight`, `h_conv...` -> `h.0...`, `h_resblk.cba_2...` ->
    `h.1.body.2...`."""
    plain = re.fullmatch(r"(g|h_conv)\.conv2d\.(\w+)", rest)
    if plain:
        return f"{'g' if plain[1] == 'g' else 'h'}.0.{plain[2]}"
    block = re.fullmatch(r"h_resblk\.cba_([12])\.conv2d\.(\w+)", rest)
    if block:
        return f"h.1.body.{0 if block[1] == '1' else 2}.{block[2]}"
    return None


def from_release(state: dict) -> dict:
    """A state_dict of the release's names in the harness's; two release tensors landing on
    one harness name is refused, naming both."""
    mapped: dict = {}
    origin: dict[str, str] = {}
    for name, value in state.items():
        target = harness_name(name)
        if target in mapped:
            raise ValueError(f"release tensors {origin[target]} and {name} both map to "
                             f"{target}")
        mapped[target], origin[target] = value, name
    return mapped
