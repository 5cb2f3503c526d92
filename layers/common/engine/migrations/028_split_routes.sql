-- Split routes (issue 28; execution/split.py): the route an order executes, one leg or a
-- split over two pools in one transaction, each leg with its amount in, quoted output and
-- minimum output (the routing frame's `route`); `filled.legs` holds each leg's realized fill.
ALTER TABLE orders ADD COLUMN route jsonb;
