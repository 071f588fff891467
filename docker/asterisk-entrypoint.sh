#!/bin/sh
# Entrypoint of docker/asterisk.Dockerfile: installs the production Asterisk
# configuration into /etc/asterisk and fills in what differs in a container,
# then execs the command (by default Asterisk in the foreground).
#
# Rewritten lines of manager.conf (everything else is copied unchanged):
#   [general]  bindaddr = $AMI_BINDADDR   (Asterisk's address on the internal
#                                          compose network; never 0.0.0.0 here)
#   [dialerd]  permit   = $AMI_PERMIT     (dialerd's address, addr/mask)
#   [dialerd]  secret   = content of $AMI_SECRET_FILE (a Docker secret)
# The result is regenerated at every start from /etc/dialerd-asterisk, so a
# secret rotated in the secret file takes effect on the next restart and no
# edit made inside the container survives one.
set -eu

src=/etc/dialerd-asterisk
conf=/etc/asterisk
secret_file=${AMI_SECRET_FILE:-/run/secrets/ami_secret}

die() {
    echo "asterisk-entrypoint: $*" >&2
    exit 1
}

[ -n "${AMI_BINDADDR:-}" ] || die "AMI_BINDADDR is not set (Asterisk's IPv4 address on the compose network)"
[ -n "${AMI_PERMIT:-}" ] || die "AMI_PERMIT is not set (dialerd's address, e.g. 172.28.53.10/255.255.255.255)"
case $AMI_BINDADDR in
    *[!0-9.]*) die "AMI_BINDADDR must be an IPv4 address, got '$AMI_BINDADDR'" ;;
    0.0.0.0) die "AMI_BINDADDR=0.0.0.0 would expose AMI on every network of this container" ;;
esac
case $AMI_PERMIT in
    *[!0-9./]*) die "AMI_PERMIT must be addr/mask, got '$AMI_PERMIT'" ;;
esac
if [ ! -f "$secret_file" ] || [ ! -r "$secret_file" ]; then
    die "cannot read the AMI secret $secret_file"
fi

# $(...) drops trailing newlines; anything else odd is refused rather than
# escaped: ';' starts a comment in Asterisk config files, and dialerd strips
# surrounding whitespace, which Asterisk would not.
secret=$(cat "$secret_file")
case $secret in
    '') die "$secret_file is empty" ;;
    CHANGE_ME_DIALERD_AMI_SECRET) die "$secret_file holds the public placeholder secret" ;;
    *[!A-Za-z0-9._~+/=-]*) die "$secret_file: use only A-Z a-z 0-9 . _ ~ + / = - (e.g. openssl rand -hex 24)" ;;
esac
[ "${#secret}" -ge 16 ] || die "$secret_file: the secret must be at least 16 characters"

[ -f "$src/manager.conf" ] || die "no $src/manager.conf"

# Fresh copy: no stale file of a previous start or of Debian's samples.
find "$conf" -mindepth 1 -delete
cp -R "$src/." "$conf/"
# asterisk-conf/ has no rtp.conf: use the container's narrow, published range.
[ -e "$conf/rtp.conf" ] || cp /usr/local/share/dialerd/rtp.conf "$conf/rtp.conf"

section=
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
        \[*\]*) section=${line#\[}; section=${section%%\]*} ;;
    esac
    case $section:$line in
        general:bindaddr*=*) line="bindaddr = $AMI_BINDADDR" ;;
        dialerd:permit*=*) line="permit = $AMI_PERMIT" ;;
        dialerd:secret*=*) line="secret = $secret" ;;
    esac
    printf '%s\n' "$line"
done <"$src/manager.conf" >"$conf/manager.conf"

# Refuse to start on a template whose lines moved: never fall back silently to
# a loopback-only AMI (dialerd could not connect) or to the placeholder secret.
grep -qx "bindaddr = $AMI_BINDADDR" "$conf/manager.conf" || die "manager.conf: no bindaddr line in [general] to rewrite"
grep -qx "permit = $AMI_PERMIT" "$conf/manager.conf" || die "manager.conf: no permit line in [dialerd] to rewrite"
if grep -q CHANGE_ME_DIALERD_AMI_SECRET "$conf/manager.conf"; then
    die "manager.conf: the placeholder secret is still present"
fi

chown -R root:asterisk "$conf"
find "$conf" -type d -exec chmod 0750 {} +
find "$conf" -type f -exec chmod 0640 {} +
install -d -o asterisk -g asterisk -m 0755 /var/run/asterisk
chown asterisk:asterisk /var/lib/asterisk /var/log/asterisk

exec "$@"
