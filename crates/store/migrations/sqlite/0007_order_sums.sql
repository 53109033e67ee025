-- Every order asks for its member's 12-month qualifying spend (tiers) and,
-- under a daily cap, the points of the day. With the two sums' columns in
-- the index the answer comes from the index alone, without a visit to each
-- past order's row.
CREATE INDEX orders_member_sums ON orders (member_id, occurred_at, qualifying_fen, points_earned);
DROP INDEX orders_member;
