"""Creative mode: sampling defaults for when diversity is the point.

Applied only to parameters the client left unset; whatever the client sets wins.

- temperature 0.9: close to the model's own distribution (1.0) for varied wording, a little
  cooler so a small model stays coherent over a few hundred tokens.
- top_p 0.95: nucleus sampling (Holtzman et al. 2019, "The Curious Case of Neural Text
  Degeneration") drops the unreliable low-probability tail that makes sampled text derail,
  while keeping the diversity that greedy and beam search lose.
- presence_penalty 0.3: a mild push away from repeating the same phrases, the common failure of
  small models at sampling temperature; small enough not to distort the content.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CreativeDefaults:
    """Sampling defaults for creative requests (documented in the module docstring)."""

    temperature: float = 0.9
    top_p: float = 0.95
    presence_penalty: float = 0.3


CREATIVE_DEFAULTS = CreativeDefaults()
