#!/usr/bin/env bash
# Builds zcow's container images on this host with no registry at all:
#   localhost/zcow-debian:bookworm   debootstrap --variant=minbase from the Debian mirror apt uses, imported
#   localhost/zcow-jre:17            + Debian's openjdk-17-jre-headless                  (images/jre)
#   localhost/zcow-kafka:VERSION     + Kafka's jars from Maven Central, apache/kafka's entry point (images/kafka)
#   localhost/zcow-zookeeper:VERSION + ZooKeeper's jars from Maven Central               (images/zookeeper)
#   localhost/zcow:latest            + the zcow jar, built here with Maven               (deploy/docker)
# What it needs: root (debootstrap), debootstrap, docker or podman, Maven and a JDK, asciidoctor (the
# man pages), and the Debian
# mirror and Maven repository the host already uses (an air-gapped site points both at its own).
#
# An image whose inputs have not changed is kept: each image carries a label with a digest of its
# files, of the jars it holds and of its parent image, and is rebuilt only when that digest changes
# (or with --rebuild). A second run costs the Maven runs that list the jars, a few seconds each.
#
# Usage: deploy/images/build.sh [--jar FILE] [--rebuild] [IMAGE...]
#   IMAGE       debian, jre, kafka, zookeeper, zcow (default: all, in that order; an image is built
#               on whatever its parent is now, so name the parents too when they must be fresh)
#   --jar FILE  put this zcow.jar in the zcow image instead of building one
#   --rebuild   ignore the labels and build every image named
# Environment:
#   ZCOW_ENGINE       docker or podman (default: docker when its daemon answers, else podman)
#   DEBIAN_MIRROR     the mirror for debootstrap (default: the one for bookworm in /etc/apt/sources.list*)
#   ZCOW_IMAGES_WORK  where build contexts are staged (default: target/images in the repository)
#   MAVEN_ARGS        extra Maven arguments, read by Maven itself (e.g. -o to stay offline)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${ZCOW_IMAGES_WORK:-$root/target/images}
label=io.zcow.inputs
suite=bookworm

jar=""
rebuild=false
wanted=()
while [ $# -gt 0 ]; do
  case $1 in
    --jar) jar=$(realpath "$2"); shift 2 ;;
    --rebuild) rebuild=true; shift ;;
    debian | jre | kafka | zookeeper | zcow) wanted+=("$1"); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=(debian jre kafka zookeeper zcow)

say() { echo "build.sh: $*"; }
die() { echo "build.sh: $*" >&2; exit 1; }

if [ -z "${ZCOW_ENGINE:-}" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ZCOW_ENGINE=docker
  elif command -v podman >/dev/null && podman info >/dev/null 2>&1; then
    ZCOW_ENGINE=podman
  else
    die "no container engine answers: start dockerd, or podman (see docs/OPERATIONS.md), or set ZCOW_ENGINE"
  fi
fi
engine=$ZCOW_ENGINE

# digest ARG...: one sha256 over strings and the contents of files (a directory: all its files).
digest() {
  local a
  for a in "$@"; do
    if [ -d "$a" ]; then
      (cd "$a" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    elif [ -f "$a" ]; then
      sha256sum < "$a"
    else
      printf '%s\n' "$a"
    fi
  done | sha256sum | cut -c1-64
}

image_id() { "$engine" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
inputs_of() { "$engine" image inspect --format "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null || true; }

# up_to_date IMAGE DIGEST: true (and says so) when IMAGE exists and was built from DIGEST.
up_to_date() {
  if ! $rebuild && [ "$(inputs_of "$1")" = "$2" ]; then
    say "$1 is up to date"
    return 0
  fi
  return 1
}

# replaced OLD_ID IMAGE: removes the image IMAGE was before a rebuild, if nothing uses it any more.
replaced() {
  if [ -n "$1" ] && [ "$1" != "$(image_id "$2")" ]; then
    "$engine" rmi "$1" >/dev/null 2>&1 || true
  fi
}

# build IMAGE DIGEST CONTEXT DOCKERFILE [BUILD_ARG...]
build() {
  local image=$1 inputs=$2 context=$3 dockerfile=$4 old start
  shift 4
  old=$(image_id "$image")
  start=$SECONDS
  # Host networking: apt in the JRE layer reaches the mirror the way the host does (its name may
  # be resolved by the host's /etc/hosts alone).
  "$engine" build --network host --label "$label=$inputs" -f "$dockerfile" -t "$image" "$@" "$context"
  replaced "$old" "$image"
  say "$image built in $((SECONDS - start)) s"
}

# The mirror apt uses for bookworm: deb822 (URIs: + Suites:) or one-line sources.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list)
  local mirror
  mirror=$(cat "${files[@]}" 2>/dev/null | awk -v suite="$suite" '
    /^deb[ \t]/ { for (i = 2; i < NF; i++) if ($i !~ /^\[/ && $(i + 1) == suite) { print $i; exit } }
    /^[ \t]*$/ { uris = ""; suites = "" }
    /^URIs:/ { uris = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) suites = suite }
    uris != "" && suites != "" && uris !~ /security/ { print uris; exit }')
  [ -n "$mirror" ] || die "no Debian mirror for $suite in /etc/apt/sources.list*: set DEBIAN_MIRROR"
  echo "$mirror"
}

base=localhost/zcow-debian:$suite
jre=localhost/zcow-jre:17

build_debian() {
  local mirror inputs old start rootfs
  mirror=$(debian_mirror)
  inputs=$(digest "debootstrap --variant=minbase $suite $mirror")
  up_to_date "$base" "$inputs" && return
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
  start=$SECONDS
  rootfs=$work/debian-rootfs
  rm -rf "$rootfs"
  mkdir -p "$work"
  say "debootstrap $suite from $mirror"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $work/debootstrap.log)"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  old=$(image_id "$base")
  tar --numeric-owner -C "$rootfs" -c . \
    | "$engine" import --change "LABEL $label=$inputs" --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$rootfs"
  replaced "$old" "$base"
  say "$base built in $((SECONDS - start)) s"
}

build_jre() {
  [ -n "$(image_id "$base")" ] || die "$base is missing: build debian first"
  local inputs
  inputs=$(digest "$(image_id "$base")" "$here/jre")
  up_to_date "$jre" "$inputs" && return
  build "$jre" "$inputs" "$here/jre" "$here/jre/Dockerfile" --build-arg "BASE_IMAGE=$base"
}

# jars NAME: the runtime jars of images/NAME/pom.xml, from the Maven repository, into the staging
# directory $work/NAME/libs.
jars() {
  local libs=$work/$1/libs
  mkdir -p "$libs"
  mvn -B -q -Dstyle.color=never -f "$here/$1/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs"
}

# from_jars NAME ARTIFACT: localhost/zcow-NAME:VERSION, VERSION read from the jar ARTIFACT-VERSION.jar.
from_jars() {
  local name=$1 artifact=$2 context=$work/$1 version inputs
  [ -n "$(image_id "$jre")" ] || die "$jre is missing: build jre first"
  rm -rf "$context"
  jars "$name"
  version=$(cd "$context/libs" && ls "$artifact"-[0-9]*.jar | sed "s/^$artifact-//; s/\.jar\$//")
  [ -n "$version" ] || die "no $artifact jar among the jars of images/$name/pom.xml"
  find "$here/$name" -maxdepth 1 -type f ! -name pom.xml -exec cp -p {} "$context/" \;
  inputs=$(digest "$(image_id "$jre")" "$context")
  up_to_date "localhost/zcow-$name:$version" "$inputs" && return
  build "localhost/zcow-$name:$version" "$inputs" "$context" "$context/Dockerfile" --build-arg "BASE_IMAGE=$jre"
}

build_zcow() {
  local context=$work/zcow inputs start
  [ -n "$(image_id "$jre")" ] || die "$jre is missing: build jre first"
  if [ -z "$jar" ]; then
    start=$SECONDS
    say "building the zcow jar: mvn -B -q package -DskipTests -pl cli -am"
    (cd "$root" && mvn -B -q -Dstyle.color=never package -DskipTests -pl cli -am)
    jar=$root/cli/target/zcow.jar
    say "zcow jar built in $((SECONDS - start)) s"
  fi
  [ -f "$jar" ] || die "no zcow jar at $jar"
  rm -rf "$context"
  mkdir -p "$context"
  cp "$jar" "$context/zcow.jar"
  # Man pages: picocli's generator writes AsciiDoc, asciidoctor makes it troff.
  command -v asciidoctor >/dev/null || die "asciidoctor is missing (apt-get install asciidoctor): it makes the man pages"
  java -jar "$context/zcow.jar" gen-manpage --outdir "$work/zcow-adoc" >/dev/null
  asciidoctor -b manpage -D "$context/man" "$work"/zcow-adoc/*.adoc
  rm -rf "$work/zcow-adoc"
  inputs=$(digest "$(image_id "$jre")" "$root/deploy/docker/Dockerfile" "$context/zcow.jar")
  up_to_date localhost/zcow:latest "$inputs" && return
  build localhost/zcow:latest "$inputs" "$context" "$root/deploy/docker/Dockerfile" --build-arg "BASE_IMAGE=$jre"
}

total=$SECONDS
say "engine: $engine ($("$engine" version --format '{{.Server.Version}}' 2>/dev/null || "$engine" --version))"
for image in "${wanted[@]}"; do
  case $image in
    debian) build_debian ;;
    jre) build_jre ;;
    kafka) from_jars kafka kafka_2.13 ;;
    zookeeper) from_jars zookeeper zookeeper ;;
    zcow) build_zcow ;;
  esac
done
say "done in $((SECONDS - total)) s"
