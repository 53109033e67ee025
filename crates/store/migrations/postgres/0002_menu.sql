-- The menu: dishes by SKU with category and spice level. Product and category
-- earning bonuses, taste profiles and dish reports read it.
CREATE TABLE menu_items (
    sku          TEXT PRIMARY KEY,
    brand_code   TEXT NOT NULL REFERENCES brands(code),
    name         TEXT NOT NULL,
    category     TEXT NOT NULL,
    spice_level  BIGINT NOT NULL DEFAULT 0,
    price_fen    BIGINT NOT NULL,
    is_new       BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
CREATE INDEX menu_items_category ON menu_items (brand_code, category);
