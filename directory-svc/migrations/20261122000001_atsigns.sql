-- One row per registered atSign: where its atServer answers, and which operator owns the registration.
CREATE TABLE atsigns (
    atsign     text        PRIMARY KEY CHECK (atsign <> '' AND atsign = lower(atsign) AND left(atsign, 1) <> '@'),
    host       text        NOT NULL CHECK (host <> ''),
    port       integer     NOT NULL CHECK (port BETWEEN 1 AND 65535),
    owner      text        NOT NULL CHECK (owner <> ''),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every change is announced to all directory replicas in the same transaction, so their caches follow
-- the table whoever writes it (the API, or an operator with psql).
CREATE FUNCTION atsigns_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('atdirectory_changes',
            json_build_object('op', 'delete', 'atsign', OLD.atsign)::text);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.atsign <> OLD.atsign THEN
        PERFORM pg_notify('atdirectory_changes',
            json_build_object('op', 'delete', 'atsign', OLD.atsign)::text);
    END IF;
    PERFORM pg_notify('atdirectory_changes',
        json_build_object('op', 'upsert', 'atsign', NEW.atsign, 'host', NEW.host, 'port', NEW.port)::text);
    RETURN NEW;
END;
$$;

CREATE TRIGGER atsigns_notify
    AFTER INSERT OR UPDATE OR DELETE ON atsigns
    FOR EACH ROW EXECUTE FUNCTION atsigns_notify();

-- TRUNCATE has no rows; tell replicas to drop everything they know.
CREATE FUNCTION atsigns_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('atdirectory_changes', json_build_object('op', 'flush')::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER atsigns_notify_truncate
    AFTER TRUNCATE ON atsigns
    FOR EACH STATEMENT EXECUTE FUNCTION atsigns_notify_truncate();
