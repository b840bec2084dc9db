"""A sample battle, in Danish or English, for ``battles serve --demo``."""

from __future__ import annotations

from battles.model import BattleDraft, Language

_DEMO: dict[Language, dict[str, object]] = {
    "en": {
        "title": "Future Battles: the town in 2079",
        "topic": "Sustainability",
        "scenario": "It is 2079. The sea has risen and summers are hotter. How does our region thrive?",
        "battlers": [
            {"name": "Asha", "vision": "A floating harbour town that farms the sea", "affiliation": "Architect"},
            {"name": "Bo", "vision": "Every roof a forest, every street a river", "affiliation": "Biologist"},
            {"name": "Camille", "vision": "A four-day week to repair what we broke", "affiliation": "Economist"},
            {"name": "Dev", "vision": "Robots do the heavy lifting, people do the dreaming", "affiliation": "Engineer"},
        ],
    },
    "da": {
        "title": "Future Battles: byen i 2079",
        "topic": "Bæredygtighed",
        "scenario": "Det er 2079. Havet er steget, og somrene er varmere. Hvordan trives vores region?",
        "battlers": [
            {"name": "Asha", "vision": "En flydende havneby, der dyrker havet", "affiliation": "Arkitekt"},
            {"name": "Bo", "vision": "Hvert tag en skov, hver gade en å", "affiliation": "Biolog"},
            {
                "name": "Camille",
                "vision": "En firedages arbejdsuge til at reparere det, vi ødelagde",
                "affiliation": "Økonom",
            },
            {"name": "Dev", "vision": "Robotterne løfter, menneskene drømmer", "affiliation": "Ingeniør"},
        ],
    },
}


def demo_draft(language: Language) -> BattleDraft:
    return BattleDraft.model_validate({**_DEMO[language], "language": language})
