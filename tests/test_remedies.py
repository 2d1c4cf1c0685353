"""Remedies exact for the object: a container made by a plain `podman run` gets `podman rm -f`
and its own command with the network that keeps client IPs; one made by podman-compose or
Quadlet gets the fix for its file; Podman without Quadlet is never offered `fix quadlet`."""

from __future__ import annotations

from rootless_doctor import knowledge as kb
from rootless_doctor import render
from rootless_doctor.checks import all_checks
from rootless_doctor.model import (
    ContainerFacts,
    HostFacts,
    PodmanFacts,
    PublishedPort,
    Report,
    Tool,
)

P5 = PodmanFacts(cli="/usr/bin/podman", version="5.4.2", rootless=True)
PASTA = {"pasta": Tool(name="pasta", path="/usr/bin/pasta", version="2025_05_03")}
RUN = (
    "podman", "run", "-d", "--name", "web", "--network", "rdnet", "-p", "8080:80",
    "-e", "NETWORK_INTERFACE=eth0", "-e", "TZ=UTC", "docker.io/library/nginx:1",
)  # fmt: skip


def _container(cmd: tuple[str, ...], mode: str = "rdnet") -> ContainerFacts:
    return ContainerFacts(
        engine="podman",
        name="web",
        network_mode=mode,
        networks=(mode,),
        port_handler="rootlessport",
        ports=(PublishedPort(host_port=8080, container_port=80),),
        env={"NETWORK_INTERFACE": "eth0", "TZ": "UTC"},
        create_command=cmd,
    )


def test_plain_podman_run_is_recreated_with_its_own_command() -> None:
    assert kb.podman_rerun(_container(RUN), "pasta") == (
        "podman run --network pasta -d --name web -p 8080:80 -e NETWORK_INTERFACE=eth0 "
        "-e TZ=UTC docker.io/library/nginx:1"
    )
    # slirp4netns names the interface tap0: the command sets it.
    rerun = kb.podman_rerun(_container(RUN), "slirp4netns:port_handler=slirp4netns")
    assert rerun is not None and "-e NETWORK_INTERFACE=tap0" in rerun
    assert "--network slirp4netns:port_handler=slirp4netns" in rerun
    assert rerun.count("--network") == 1 and "rdnet" not in rerun
    quoted = kb.podman_rerun(_container((*RUN[:-1], "sh", "-c", "echo a b")), "pasta")
    assert quoted is not None and quoted.endswith("sh -c 'echo a b'")


def test_compose_and_quadlet_containers_are_fixed_in_their_files() -> None:
    compose = (*RUN[:3], "--label", "io.podman.compose.project=mail", *RUN[3:])
    quadlet = (*RUN[:3], "--label", "PODMAN_SYSTEMD_UNIT=web.service", *RUN[3:])
    assert kb.podman_rerun(_container(compose), "pasta") is None
    assert kb.podman_rerun(_container(quadlet), "pasta") is None
    assert kb.podman_rerun(_container(()), "pasta") is None  # command not known


def test_container_check_remedy_and_do_next_are_the_exact_commands() -> None:
    podman = PodmanFacts(
        cli="/usr/bin/podman", version="5.4.2", rootless=True, containers=(_container(RUN),)
    )
    facts = HostFacts(podman=podman, tools=PASTA)
    [res] = [r for r in all_checks(facts) if r.id == "CONTAINER-SOURCE-IP"]
    assert res.status == "fail"
    assert render.commands_of(res) == (
        "podman rm -f web",
        "podman run --network pasta -d --name web -p 8080:80 -e NETWORK_INTERFACE=eth0 "
        "-e TZ=UTC docker.io/library/nginx:1",
    )
    steps = render.next_steps(Report(engines=(), checks=(res,)))
    assert steps == [(("CONTAINER-SOURCE-IP",), render.commands_of(res))]


def test_no_quadlet_offered_before_podman_4_4() -> None:
    for version, offered in (("4.3.1", False), ("4.9.3", True), ("5.4.2", True)):
        p = PodmanFacts(
            cli="/usr/bin/podman",
            version=version,
            rootless=True,
            containers=(_container(()),),
        )
        [res] = [r for r in all_checks(HostFacts(podman=p)) if r.id == "CONTAINER-SOURCE-IP"]
        assert (kb.FIX_QUADLET in res.remedy) is offered, (version, res.remedy)
        assert kb.FIX_COMPOSE in res.remedy


def test_per_container_results_name_their_engine_and_container() -> None:
    podman = PodmanFacts(
        cli="/usr/bin/podman", version="5.4.2", rootless=True, containers=(_container(RUN),)
    )
    [res] = [r for r in all_checks(HostFacts(podman=podman)) if r.id == "CONTAINER-SOURCE-IP"]
    data = render.check_json(res)
    assert (data["engine"], data["container"]) == ("podman", "web")


def test_compose_and_quadlet_containers_get_the_fix_for_their_file() -> None:
    compose = (
        "podman", "run", "--name=mail_web_1", "-d",
        "--label", "io.podman.compose.project=mail",
        "--label", "PODMAN_SYSTEMD_UNIT=podman-compose@mail.service",
        "--label", "com.docker.compose.project.working_dir=/srv/mail",
        "--label", "com.docker.compose.project.config_files=compose.yaml",
        "--label", "com.docker.compose.service=web",
        "--net", "mail_default", "nginx",
    )  # fmt: skip
    assert kb.podman_managed_fix(_container(compose)) == (
        "rootless-doctor fix compose /srv/mail/compose.yaml --service web --restart"
    )
    quadlet = (
        "/usr/bin/podman", "run", "--name=systemd-web", "--cidfile=/run/user/1000/web.cid",
        "--replace", "--rm", "-d", "--label", "PODMAN_SYSTEMD_UNIT=web.service", "nginx",
    )  # fmt: skip
    assert kb.podman_managed_fix(_container(quadlet)) == (
        "rootless-doctor fix quadlet ~/.config/containers/systemd/web.container --restart"
    )
    podman = PodmanFacts(
        cli="/usr/bin/podman", version="5.4.2", rootless=True, containers=(_container(compose),)
    )
    [res] = [r for r in all_checks(HostFacts(podman=podman, tools=PASTA))
             if r.id == "CONTAINER-SOURCE-IP"]  # fmt: skip
    assert render.commands_of(res) == (
        "rootless-doctor fix compose /srv/mail/compose.yaml --service web --restart",
    )
    assert "network_mode pasta" in res.remedy
