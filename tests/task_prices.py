"""The prices the tests' operator sets for built-in task models whose list prices are not
public, written as the operator writes them under ``models:``. The built-ins carry only the
billing unit for these, and a gateway refuses to serve them until a price is set."""

from __future__ import annotations

from typing import Any

OPERATOR_PRICES: dict[str, dict[str, Any]] = {
    "gpt-image-2": {"kind": "image", "billing": {"credits": {"1k": "20", "2k": "35", "4k": "60"}}},
    "veo3.1-fast": {"kind": "video", "billing": {"credits": "400"}},
    # Per second, keyed by resolution (the tier field a credits map defaults to).
    "veo3.1-fast-official": {
        "kind": "video",
        "billing": {"credits": {"720p": "100", "1080p": "120", "4k": "300"}},
    },
    # Not even the unit is public: the operator sets the whole billing.
    "doubao-seedance-2.0": {
        "kind": "video",
        "billing": {
            "unit": "second",
            "credits": {"480p": "45", "720p": "95", "1080p": "210", "4k": "420"},
        },
    },
    "mureka-v9-song": {"kind": "audio", "billing": {"credits": "60"}},
}
