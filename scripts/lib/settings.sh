# shellcheck shell=bash
# Reads the settings table of src/config/settings.rs for the deployment checks (check-compose.sh,
# check-railway.sh, check-kubernetes.sh). Source this file from the repository's root.
#
# The table's source keeps two things parseable, and a unit test in src/config
# (the_deployment_checks_find_every_key_in_the_table_source) parses it as these functions do:
# each entry's `key: "..."` is a line of its own, its `default:` is the line after it, and its
# `secret:` is a line of its own after them.

settings_source=src/config/settings.rs

# settings_keys: every key, one a line, in the table's order, as the TOML file spells it.
settings_keys() {
  sed -n 's/^ *key: "\([a-z_0-9]*\)",$/\1/p' "$settings_source"
}

# settings_integer_default KEY: the key's built-in default when it is a plain integer
# (`default: Integer(25),`); nothing otherwise.
settings_integer_default() {
  sed -n "/^ *key: \"$1\",\$/{n;s/^ *default: Integer(\([0-9][0-9]*\)),\$/\1/p;}" "$settings_source"
}

# settings_secret_keys: the keys whose entry says `secret: true,`, one a line, in the table's order.
settings_secret_keys() {
  awk '/^ *key: "[a-z_0-9]*",$/ { split($0, part, "\""); key = part[2] }
    /^ *secret: true,$/ { print key }' "$settings_source"
}
