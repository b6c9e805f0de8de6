"""Settings of the demo workspace (this repository), read by `lakebook` and JupyterLab alike."""

c = get_config()  # noqa: F821

# Where the lake (Landing, Bronze, Silver, Gold) lives, relative to this folder.
c.Lakebook.lake_root = "lake"
# Metadata database; empty means SQLite at .lakebook/metadata.db.
c.Lakebook.metadata_url = ""
# How many job notebooks run at the same time.
c.Lakebook.max_parallel_jobs = 2
# Connections by name. Never put secrets here: name environment variables instead.
c.Lakebook.connections = {}
