# Asterisk 22 for dialerd, from Debian sid (bookworm has no asterisk package;
# sid has 22.x, the version the project's sandbox tests run against).
#
# Build from the repository root:
#   docker build -f docker/asterisk.Dockerfile -t dialerd-asterisk .
#
# NOT BUILT OR RUN on the machine where it was written (no Docker engine there):
# reviewed by reading and linted with hadolint only. See docker/README.md.
#
# What differs from a host install, and why (the production asterisk-conf/ is
# copied in UNCHANGED; docker/asterisk-entrypoint.sh rewrites three lines of
# manager.conf at every start, from the environment and a Docker secret):
#
# * AMI bind address. manager.conf binds 127.0.0.1 because on a host dialerd
#   runs beside Asterisk. In compose, dialerd is another container, so loopback
#   cannot reach it: AMI must listen on a container network. The trade-off:
#   AMI is plain text with originate rights, so anything that can reach the
#   port and knows the secret can place calls. Mitigations used here:
#     - bindaddr = Asterisk's own address on the INTERNAL `backend` network
#       (AMI_BINDADDR), not 0.0.0.0: AMI is not even listening on the network
#       that carries SIP, and port 5038 is never published to the host;
#     - the `backend` network is `internal: true` (no route outside) and only
#       dialerd and mosquitto are on it;
#     - the dialerd user keeps `deny = 0.0.0.0/0.0.0.0` and its single
#       `permit` becomes dialerd's fixed address on that network (AMI_PERMIT,
#       a /32), instead of 127.0.0.1;
#     - the secret comes from the Docker secret /run/secrets/ami_secret and is
#       never baked into the image; the public placeholder is refused.
#   Anyone with access to the Docker socket can still read the secret: that is
#   root-equivalent on the host anyway. For AMI across hosts use TLS instead.
# * SIP/RTP ports. pjsip.conf binds UDP 0.0.0.0:5060 inside the container;
#   compose publishes 5060/udp and the RTP range. asterisk-conf/ has no
#   rtp.conf, so Asterisk's built-in range would be 5000-31000 (26,000 ports:
#   far too many to publish); docker/rtp.conf (10000-10199, used only when
#   asterisk-conf/ has no rtp.conf of its own) is copied in instead, and
#   compose publishes exactly that range. Behind Docker's NAT, phones and the
#   trunk see the host's address, not the container's: the pjsip transport
#   needs external_media_address / external_signaling_address / local_net
#   set for the real deployment (or run this container with
#   `network_mode: host` and keep every address as on a host install).
# * Custom prompts (safe-harbor recordings): Debian links
#   /usr/share/asterisk/sounds/custom to /usr/local/share/asterisk/sounds;
#   compose mounts a volume there.

FROM debian:sid-slim

# asterisk: Depends pulls asterisk-config (Debian's sample configs, removed
# below), asterisk-core-sounds-en and adduser (creates the asterisk user).
# asterisk-core-sounds-en-gsm: the actual gsm prompt files; the dialplan's
# default safe-harbor prompt (ss-noservice) is one of them.
# Recommends (music on hold, sox) are not needed: res_musiconhold is noload.
# Versions are not pinned: sid moves, and the tag of this image is what pins.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        asterisk asterisk-modules asterisk-core-sounds-en-gsm \
 && rm -rf /var/lib/apt/lists/* \
 && test -e /usr/share/asterisk/sounds/en/ss-noservice.gsm \
 && rm -rf /etc/asterisk \
 && install -d -o root -g asterisk -m 0750 /etc/asterisk \
 && install -d -o asterisk -g asterisk -m 0755 /var/run/asterisk \
 && install -d -o asterisk -g asterisk -m 0755 /usr/local/share/asterisk/sounds

# The production configuration, untouched; the entrypoint copies it to
# /etc/asterisk at each start and fills in the container-specific lines.
# To run with another configuration, bind-mount it over /etc/dialerd-asterisk.
COPY asterisk-conf/ /etc/dialerd-asterisk/
COPY docker/rtp.conf /usr/local/share/dialerd/rtp.conf
COPY --chmod=0755 docker/asterisk-entrypoint.sh /usr/local/bin/asterisk-entrypoint

# SIP signalling and the RTP range of docker/rtp.conf. AMI (5038) is
# deliberately NOT exposed: it is reached over the compose network only.
EXPOSE 5060/udp 10000-10199/udp

# astdb and other state; logs written by logger.conf (no logrotate in the
# container: keep an eye on their size, or mount and rotate them on the host).
VOLUME ["/var/lib/asterisk", "/var/log/asterisk", "/usr/local/share/asterisk/sounds"]

# Asterisk shuts down on SIGTERM. (The project's sandbox saw 22.10 ignore it
# after a refused duplicate-ChannelId Originate; Docker then SIGKILLs after the
# stop timeout, which is the same last resort the sandbox uses.)
STOPSIGNAL SIGTERM

# Fully booted = the control socket answers and every module has loaded.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["asterisk", "-rx", "core waitfullybooted"]

# The entrypoint runs as root only to write /etc/asterisk; Asterisk itself
# drops to the asterisk user and group (-U/-G) before loading modules.
ENTRYPOINT ["/usr/local/bin/asterisk-entrypoint"]
# -f foreground (PID 1 of the container, logs to stdout), -n no colour.
CMD ["asterisk", "-f", "-n", "-U", "asterisk", "-G", "asterisk"]
