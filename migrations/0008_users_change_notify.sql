-- Every change to a user (disabled, token version, role, email, password) or its removal is
-- announced on the channel `sigmasight_users` with the user's id as the payload. The API keeps
-- the users it has authenticated in memory and drops one when its id is announced, so an
-- authenticated request reads the row only on a miss (src/auth/cache.rs, docs/auth.md).
-- Notifications are sent at commit, to sessions listening then, and cost nothing without one.
--
-- Older releases neither listen nor rely on this trigger, so a rollback is safe.
CREATE FUNCTION users_notify_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sigmasight_users', OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_change
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_notify_change();

COMMENT ON FUNCTION users_notify_change() IS 'Announces a changed or removed user on channel sigmasight_users (payload: the id).';
