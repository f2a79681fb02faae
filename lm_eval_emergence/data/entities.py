"""Frozen entity lists for the synthetic in-context-learning (ICL) lists of arXiv 2405.12617.

The paper lists ordered selections of k distinct entities of one category (25 countries, 16
animals, 15 colours), each a single token of the model's tokenizer. Its exact lists are not
published, so these are curated, common English names, longer than needed: `single_token_entities`
keeps those that are one token under a given tokenizer. Do not reorder or edit these tuples
without bumping `ENTITY_LISTS_VERSION`: the seeded samples depend on the order.
"""

from __future__ import annotations

ENTITY_LISTS_VERSION = 1

COUNTRIES: tuple[str, ...] = (
    "France", "Spain", "China", "Japan", "India", "Italy", "Germany", "Russia", "Brazil",
    "Canada", "Mexico", "Egypt", "Greece", "Turkey", "Poland", "Sweden", "Norway", "Finland",
    "Denmark", "Ireland", "Portugal", "Austria", "Belgium", "Switzerland", "Netherlands",
    "Hungary", "Romania", "Ukraine", "Israel", "Iran", "Iraq", "Syria", "Pakistan",
    "Afghanistan", "Vietnam", "Thailand", "Korea", "Indonesia", "Malaysia", "Singapore",
    "Philippines", "Australia", "Argentina", "Chile", "Peru", "Colombia", "Venezuela", "Cuba",
    "Jamaica", "Nigeria", "Kenya", "Ethiopia", "Morocco", "Algeria", "Libya", "Sudan", "Ghana",
    "Nepal", "Qatar", "Kuwait", "Lebanon", "Iceland", "Cyprus", "Malta", "Croatia", "Serbia",
    "Bulgaria", "Bolivia", "Ecuador", "Uruguay", "Panama", "Haiti", "Somalia", "Uganda",
    "Tanzania", "Zimbabwe", "Senegal", "Cambodia", "Mongolia", "Bangladesh", "Estonia",
    "Latvia", "Lithuania", "Luxembourg", "Albania",
)  # fmt: skip

ANIMALS: tuple[str, ...] = (
    "cat", "dog", "horse", "cow", "pig", "sheep", "goat", "chicken", "duck", "mouse", "rat",
    "rabbit", "lion", "tiger", "bear", "wolf", "fox", "deer", "elephant", "monkey", "snake",
    "frog", "fish", "bird", "eagle", "owl", "shark", "whale", "dolphin", "bee", "ant", "spider",
    "turtle", "camel", "zebra", "giraffe", "donkey", "bat", "crab", "snail", "penguin",
    "kangaroo", "panda", "goose", "swan",
)  # fmt: skip

COLOURS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "black", "white", "orange", "purple", "pink", "brown",
    "gray", "grey", "silver", "gold", "violet", "cyan", "magenta", "beige", "maroon", "navy",
    "teal", "olive", "ivory", "indigo", "crimson", "turquoise", "lime", "tan", "coral", "amber",
)  # fmt: skip

#: Category name -> entity list. Aliases (plural, US spelling) resolve in `entity_list`.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "country": COUNTRIES,
    "animal": ANIMALS,
    "colour": COLOURS,
}

_ALIASES = {
    "countries": "country",
    "animals": "animal",
    "color": "colour",
    "colors": "colour",
    "colours": "colour",
}


def entity_list(category: str) -> tuple[str, ...]:
    """The frozen entity list of `category` ("country", "animal", "colour"; plurals accepted)."""
    key = _ALIASES.get(category.lower(), category.lower())
    if key not in CATEGORIES:
        raise ValueError(
            f"unknown entity category {category!r}; choose one of: {', '.join(CATEGORIES)}"
        )
    return CATEGORIES[key]
