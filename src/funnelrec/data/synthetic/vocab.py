"""Word lists of the synthetic world: categories, tags, title words, user attributes."""

from __future__ import annotations

# category -> (six category tags, three title words); the first tags read as sub-genres.
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Books": (
        ("fiction", "mystery", "fantasy", "biography", "history", "poetry"),
        ("Novel", "Chronicle", "Tales"),
    ),
    "Music": (
        ("jazz", "rock", "hip-hop", "classical", "electronic", "folk"),
        ("Album", "Sessions", "Suite"),
    ),
    "Movies": (
        ("drama", "comedy", "thriller", "sci-fi", "documentary", "animation"),
        ("Film", "Story", "Reel"),
    ),
    "Games": (
        ("rpg", "strategy", "puzzle", "shooter", "platformer", "simulation"),
        ("Quest", "Arena", "Legends"),
    ),
    "Electronics": (
        ("audio", "camera", "laptop", "phone", "wearable", "smart-home"),
        ("Gadget", "Device", "Hub"),
    ),
    "Fashion": (
        ("streetwear", "formal", "vintage", "sneakers", "accessories", "denim"),
        ("Jacket", "Collection", "Tee"),
    ),
    "Beauty": (
        ("skincare", "makeup", "fragrance", "haircare", "nails", "organic"),
        ("Serum", "Palette", "Balm"),
    ),
    "Home": (
        ("decor", "lighting", "bedding", "storage", "furniture", "rugs"),
        ("Lamp", "Cushion", "Shelf"),
    ),
    "Kitchen": (
        ("cookware", "baking", "coffee", "knives", "kitchen-gadgets", "tableware"),
        ("Pan", "Mug", "Kit"),
    ),
    "Sports": (
        ("running", "cycling", "yoga", "fitness", "tennis", "football"),
        ("Trainer", "Gear", "Pro"),
    ),
    "Outdoors": (
        ("camping", "hiking", "fishing", "climbing", "travel-gear", "survival"),
        ("Tent", "Pack", "Trail"),
    ),
    "Toys": (
        ("building-blocks", "puzzles", "dolls", "rc-cars", "board-games", "plush"),
        ("Playset", "Buddy", "Blocks"),
    ),
    "Garden": (
        ("plants", "tools", "seeds", "planters", "irrigation", "grill"),
        ("Planter", "Seeds", "Shears"),
    ),
    "Pets": (
        ("dog", "cat", "aquarium", "bird", "treats", "grooming"),
        ("Bowl", "Chew", "Bed"),
    ),
    "Health": (
        ("vitamins", "sleep", "fitness-tracker", "first-aid", "nutrition", "wellness"),
        ("Supplement", "Tonic", "Care"),
    ),
    "Travel": (
        ("luggage", "guides", "adventure", "city-break", "beach", "backpacks"),
        ("Guide", "Voyage", "Escape"),
    ),
}
TAGS_PER_CATEGORY = 6
WORDS_PER_CATEGORY = 3

GLOBAL_TAGS = (
    "bestseller",
    "indie",
    "classic",
    "limited-edition",
    "family",
    "award-winning",
    "eco",
    "budget-pick",
)

ADJECTIVES = (
    "Silent", "Golden", "Hidden", "Crimson", "Electric", "Wild", "Quiet", "Bright",
    "Lost", "Brave", "Midnight", "Frozen", "Lucky", "Urban", "Ancient", "Cosmic",
    "Gentle", "Rapid", "Secret", "Velvet", "Iron", "Sunny", "Hollow", "Royal",
)  # fmt: skip
NOUNS = (
    "River", "Garden", "Horizon", "Echo", "Harbor", "Forest", "Signal", "Mirror",
    "Compass", "Lantern", "Canyon", "Meadow", "Orbit", "Summit", "Island", "Ember",
    "Falcon", "Atlas", "Voyage", "Cascade", "Prism", "Willow", "Comet", "Anchor",
)  # fmt: skip

PRICE_BUCKETS = ("budget", "mid", "premium", "luxury")
DUPLICATE_SUFFIXES = (" (Remastered)", " - Deluxe Edition", " (2nd edition)")

AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_SHARES = (0.2, 0.3, 0.22, 0.15, 0.13)
REGIONS = ("north-america", "europe", "latam", "east-asia", "south-asia", "africa", "oceania")
REGION_SHARES = (0.24, 0.26, 0.12, 0.16, 0.12, 0.05, 0.05)
