# shellcheck shell=bash
# PostgreSQL URLs without leaking their passwords. Source this file.
#
# pgurl_split URL PREFIX sets ${PREFIX}_CONN (the URL with every password removed, from the
# user information and from a `password=` query parameter: safe on a command line, where `ps`
# shows it), ${PREFIX}_PASSWORD (decoded, for PGPASSWORD, which only the child process sees)
# and ${PREFIX}_SHOWN (the URL with the password as ***, for messages). It fails (status 1)
# on a URL that is not postgres:// or postgresql://, or whose password is not well
# percent-encoded.

# pgurl_decode STRING VAR: percent-decodes STRING into the variable VAR as libpq does: %XX
# becomes that byte and every other character stays as it is (`+` and `\` included). Fails on
# a `%` not followed by two hex digits, and on %00, which libpq refuses too.
pgurl_decode() {
  local rest=$1 out="" byte
  while [[ $rest == *%* ]]; do
    out+=${rest%%\%*}
    rest=${rest#*%}
    [[ $rest =~ ^[0-9A-Fa-f]{2} && ${rest:0:2} != 00 ]] || return 1
    # Only the two validated hex digits go through printf's escapes, never the password.
    # shellcheck disable=SC2059
    printf -v byte "\\x${rest:0:2}"
    out+=$byte
    rest=${rest:2}
  done
  printf -v "$2" '%s' "$out$rest"
}

pgurl_split() {
  local url=$1 prefix=$2 scheme rest userinfo user="" password="" conn shown
  local query="" param kept="" decoded=""
  if [[ ! $url =~ ^(postgres(ql)?://)(.*)$ ]]; then
    return 1
  fi
  scheme=${BASH_REMATCH[1]}
  rest=${BASH_REMATCH[3]}
  # The user information ends at the last '@' before the path.
  if [[ $rest =~ ^([^/]*)@(.*)$ ]]; then
    userinfo=${BASH_REMATCH[1]}
    rest=${BASH_REMATCH[2]}
    if [[ $userinfo == *:* ]]; then
      user=${userinfo%%:*}
      password=${userinfo#*:}
    else
      user=$userinfo
    fi
  fi
  # A `password=` parameter leaves the query too; as in libpq, it wins over the one before '@'.
  if [[ $rest == *\?* ]]; then
    query=${rest#*\?}
    rest=${rest%%\?*}
    while [ -n "$query" ]; do
      param=${query%%&*}
      if [[ $query == *'&'* ]]; then query=${query#*&}; else query=""; fi
      if [[ $param == password=* ]]; then
        password=${param#password=}
      elif [ -n "$param" ]; then
        kept+=${kept:+&}$param
      fi
    done
    [ -z "$kept" ] || rest+="?$kept"
  fi
  pgurl_decode "$password" decoded || return 1
  if [ -n "$user" ]; then
    conn="$scheme$user@$rest"
    if [ -n "$password" ]; then shown="$scheme$user:***@$rest"; else shown=$conn; fi
  else
    conn="$scheme$rest"
    shown=$conn
  fi
  printf -v "${prefix}_CONN" '%s' "$conn"
  printf -v "${prefix}_SHOWN" '%s' "$shown"
  printf -v "${prefix}_PASSWORD" '%s' "$decoded"
}

# pgurl_bin NAME: the PostgreSQL client NAME (pg_dump, pg_restore, psql). PG_BINDIR wins; then
# the bindir of a throwaway cluster; then PATH.
pgurl_bin() {
  local dir
  for dir in "${PG_BINDIR:-}" "${PG_THROWAWAY_BINDIR:-}"; do
    if [ -n "$dir" ] && [ -x "$dir/$1" ]; then
      echo "$dir/$1"
      return 0
    fi
  done
  command -v "$1" || {
    echo "error: $1 not found: install the PostgreSQL client (Debian: apt-get install postgresql-client) or set PG_BINDIR" >&2
    return 1
  }
}
