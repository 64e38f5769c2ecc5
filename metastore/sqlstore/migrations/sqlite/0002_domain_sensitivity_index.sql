-- 0002: the catalog's most common combined filter, products of a domain at
-- a sensitivity level, as one index range scan; without it an empty
-- intersection scans every row of the larger single-column range.
CREATE INDEX objects_by_domain_sensitivity ON objects (kind, domain, sensitivity, id);
