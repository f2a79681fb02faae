"""Named IE protocols: an estimator, its options, the target and the form, under one name.

A block is a deterministic map, so I(x; y) of its input and output is the entropy of the data;
every finite, model-dependent IE comes from a restriction chosen on purpose (a noise floor, a
predictor family, a training budget), and the numbers of two protocols are different
quantities. A run records the protocol its settings match (`protocol_name`), or "custom" when
any option differs from every protocol's, and the report refuses to compare runs of different
protocols. docs/validity.md measures each protocol on series whose answer is known.

`ie_protocol=<name>` in `--model_args` or task metadata selects one (`settings.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .estimators.api import resolve_options

__all__ = [
    "CUSTOM",
    "FORMS",
    "PROTOCOLS",
    "TARGETS",
    "Protocol",
    "get_protocol",
    "protocol_name",
    "protocol_names",
]

#: What the estimate reads of each block: its output y, or its update y - x (the skip path
#: makes y close to x where a block does little, so I(x; y) is high there).
TARGETS = ("output", "update")
#: Which micro term is subtracted: "ie", each token alone in and out (the paper's IE); "psi",
#: each token alone in against the sequence's output in context (the Psi of Rosas et al. 2020,
#: averaged over positions rather than summed, to sit on IE's scale).
FORMS = ("ie", "psi")
#: The recorded protocol of settings that match no named protocol.
CUSTOM = "custom"


@dataclass(frozen=True)
class Protocol:
    """One named way of computing IE."""

    name: str
    estimator: str
    target: str
    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)
    form: str = "ie"

    def resolved_options(self) -> dict[str, Any]:
        return resolve_options(self.estimator, dict(self.options))


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "paper",
            "mine-paper",
            "output",
            "the paper's configuration (arXiv 2405.12617): MINE critic, its schedule, full "
            "batch, maximum over steps; separates models through how learnable the dependence "
            "is under a training budget",
        ),
        Protocol(
            "infonce",
            "infonce",
            "output",
            "InfoNCE lower bound on held-out rows; on real models it reads its ceiling log2 of "
            "the held-out rows, for trained and random weights alike (docs/validity.md)",
        ),
        Protocol(
            "floor-output",
            "gaussian-floor",
            "output",
            "closed-form Gaussian MI of the standardised states with a noise floor kappa = 1",
            {"kappa": 1.0},
        ),
        Protocol(
            "floor-update",
            "gaussian-floor",
            "update",
            "closed-form Gaussian MI of the block's input and update y - x, standardised, with "
            "a noise floor kappa = 0.25",
            {"kappa": 0.25},
        ),
        Protocol(
            "psi-update",
            "gaussian-floor",
            "update",
            "the Psi form of floor-update: each token alone at the block's input against the "
            "sequence's update at the last token; no per-position profile",
            {"kappa": 0.25},
            form="psi",
        ),
        Protocol(
            "usable-update",
            "v-linear",
            "update",
            "usable information of a held-out linear-Gaussian predictor of the update y - x "
            "from x, covariance floor kappa = 0.1",
            {"kappa": 0.1},
        ),
    )
}


def protocol_names() -> list[str]:
    return list(PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`; an unknown name is an error that lists the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(
            f"unknown IE protocol {name!r} (ie_protocol); choose one of: "
            f"{', '.join(protocol_names())}"
        ) from None


def protocol_name(estimator: str, options: Mapping[str, Any], target: str, form: str = "ie") -> str:
    """The protocol these settings are, or CUSTOM if any part differs from every protocol's."""
    resolved = resolve_options(estimator, dict(options))
    for protocol in PROTOCOLS.values():
        same = (protocol.estimator, protocol.target, protocol.form) == (estimator, target, form)
        if same and protocol.resolved_options() == resolved:
            return protocol.name
    return CUSTOM
