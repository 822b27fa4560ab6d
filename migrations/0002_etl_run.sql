-- One row per ETL run (`sigmasight etl`), written as the run starts and updated as it ends, so
-- every run leaves a record: how it went, what it asked for and what it changed.
--
-- A run that dies without a trace (SIGKILL, a crash) stays `running`; the next run, holding the
-- single-writer lock, knows no other run can be alive and marks it `abandoned`.
CREATE TABLE etl_run (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    status              text        NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'cancelled', 'abandoned')),
    -- Providers asked, in order (primary first, then the fallback if it was needed).
    providers           text[]      NOT NULL DEFAULT '{}',
    -- The trading days the run covered.
    date_from           date,
    date_to             date,
    symbols_requested   integer     NOT NULL DEFAULT 0 CHECK (symbols_requested >= 0),
    symbols_succeeded   integer     NOT NULL DEFAULT 0 CHECK (symbols_succeeded >= 0),
    symbols_failed      integer     NOT NULL DEFAULT 0 CHECK (symbols_failed >= 0),
    rows_inserted       bigint      NOT NULL DEFAULT 0 CHECK (rows_inserted >= 0),
    rows_updated        bigint      NOT NULL DEFAULT 0 CHECK (rows_updated >= 0),
    rows_unchanged      bigint      NOT NULL DEFAULT 0 CHECK (rows_unchanged >= 0),
    rows_rejected       bigint      NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
    -- One sentence for people; details per symbol in `failures`.
    error_summary       text,
    -- Per-symbol failures: [{"symbol": "XYZ", "provider": "fmp", "error": "..."}].
    failures            jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(failures) = 'array'),

    CONSTRAINT etl_run_finished_after_start CHECK (finished_at IS NULL OR finished_at >= started_at),
    CONSTRAINT etl_run_finished_unless_running CHECK ((status = 'running') = (finished_at IS NULL)),
    CONSTRAINT etl_run_date_range CHECK (date_from IS NULL OR date_to IS NULL OR date_from <= date_to)
);

-- "Recent runs" (the API) and "runs left running" (abandoned-run detection).
CREATE INDEX etl_run_started_at_idx ON etl_run (started_at DESC);
CREATE INDEX etl_run_running_idx ON etl_run (id) WHERE status = 'running';

COMMENT ON TABLE etl_run IS 'One row per ETL run: times, status, providers, counts and failures.';
