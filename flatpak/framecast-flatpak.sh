#!/bin/sh
# The flatpak's command: framecast with its data in the XDG data dir
# (~/.var/app/org.framecast.Framecast/data/framecast) and the pipeline files shipped in
# the flatpak. Given --config, the file says where (FRAMECAST_* variables would win over
# it), so nothing is set then.
case " $* " in
  *" --config "* | *" --config="*) ;;
  *)
    : "${FRAMECAST_DATA_DIR:=${XDG_DATA_HOME:-$HOME/.local/share}/framecast}"
    : "${FRAMECAST_PIPELINES_DIR:=/app/share/framecast/pipelines}"
    export FRAMECAST_DATA_DIR FRAMECAST_PIPELINES_DIR
    ;;
esac
exec /app/bin/framecast "$@"
