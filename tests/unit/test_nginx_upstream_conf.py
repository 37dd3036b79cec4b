"""Parser and writer behind nginx_upstream / nginx_upstream_info (plugins/module_utils/nginx_upstream_conf.py)."""

import pytest

from ansible_collections.fleet.deployer.plugins.module_utils.nginx_conf import NginxConfError, split_config_dump
from ansible_collections.fleet.deployer.plugins.module_utils.nginx_upstream_conf import (
    describe_upstreams, edit_upstream, upstream_servers,
)

# Everything the module must leave alone around the block it edits.
SITE = '''\
# upstream app { server 10.9.9.9:80; }   <- a comment that looks like config
upstream app_v2 {
    server 10.0.0.1:8080 weight=7;
}

upstream app {
    zone app 64k;
    server 10.0.0.1:8080 weight=5 max_conns=100;  # first
    server 10.0.0.2:8080
           weight=3   # spread over lines
           max_fails=2;
    server "10.0.0.3:8080" down;
    keepalive 32;
}

upstream app2 {
\tserver 10.0.0.1:8080;
}

server {
    listen 127.0.0.1:18081;
    location / {
        return 200 "upstream app { server 10.0.0.66:80; } ;";
    }
    location /x {
        return 200 '}';
    }
    set $x "${host}{";
}
'''


def app_servers(text):
    return {server['address']: server for server in upstream_servers(text, 'app')}


def edited(text, *servers, purge=False):
    return edit_upstream(text, 'app', [dict(server) for server in servers], purge=purge)


def test_reads_only_the_named_block_ignoring_comments_strings_and_vhosts():
    servers = upstream_servers(SITE, 'app')

    assert [server['address'] for server in servers] == ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080']
    assert servers[0] == {'address': '10.0.0.1:8080', 'weight': 5, 'down': False, 'backup': False,
                          'max_fails': 1, 'fail_timeout': '10s', 'other_params': {'max_conns': '100'}}
    assert (servers[1]['weight'], servers[1]['max_fails']) == (3, 2)
    assert servers[2]['down'] is True and servers[2]['weight'] == 1


def test_describes_every_upstream_with_its_other_directives():
    upstreams = describe_upstreams(SITE)

    assert [(upstream['name'], upstream['line']) for upstream in upstreams] == [
        ('app_v2', 2), ('app', 6), ('app2', 16)]
    assert upstreams[1]['directives'] == ['zone app 64k', 'keepalive 32']
    assert describe_upstreams(SITE, 'app2')[0]['servers'][0]['weight'] == 1


def test_weight_change_touches_only_that_token():
    after = edited(SITE, {'address': '10.0.0.1:8080', 'weight': 2})

    assert after == SITE.replace('weight=5 max_conns=100;', 'weight=2 max_conns=100;')


def test_change_inside_a_multi_line_server_keeps_its_layout():
    after = edited(SITE, {'address': '10.0.0.2:8080', 'weight': 4, 'max_fails': 0})

    assert after == SITE.replace('weight=3   #', 'weight=4   #').replace('max_fails=2;', 'max_fails=0;')


def test_down_false_removes_the_flag_and_keeps_the_weight():
    drained = 'upstream app {\n    server a:1 weight=7 down max_conns=5;\n}\n'

    assert edited(drained, {'address': 'a:1', 'down': False}) == (
        'upstream app {\n    server a:1 weight=7 max_conns=5;\n}\n')


def test_removing_a_flag_that_follows_a_comment_does_not_comment_out_the_semicolon():
    text = 'upstream app {\n    server a:1 # note\n        down;\n}\n'

    after = edited(text, {'address': 'a:1', 'down': False})

    assert after == 'upstream app {\n    server a:1 # note\n        ;\n}\n'
    assert upstream_servers(after, 'app')[0]['down'] is False


def test_new_parameters_go_after_the_last_kept_one():
    text = 'upstream app {\n    server a:1 down;\n}\n'

    after = edited(text, {'address': 'a:1', 'down': False, 'weight': 3, 'backup': True, 'fail_timeout': '30s'})

    assert after == 'upstream app {\n    server a:1 weight=3 fail_timeout=30s backup;\n}\n'


def test_asking_for_an_unwritten_default_changes_nothing():
    text = 'upstream app {\n    server a:1;\n}\n'

    assert edited(text, {'address': 'a:1', 'weight': 1, 'max_fails': 1, 'fail_timeout': '10s',
                         'down': False, 'backup': False}) == text


def test_address_without_port_matches_port_80_and_case_does_not_matter():
    text = 'upstream app {\n    server Web1.example;\n}\n'

    assert edited(text, {'address': 'web1.example:80', 'weight': 2}) == (
        'upstream app {\n    server Web1.example weight=2;\n}\n')


def test_new_server_goes_after_the_last_server_indented_like_it():
    after = edited(SITE, {'address': '[fd00::4]:8080', 'weight': 4, 'backup': True})

    assert after == SITE.replace('    server "10.0.0.3:8080" down;\n',
                                 '    server "10.0.0.3:8080" down;\n    server [fd00::4]:8080 weight=4 backup;\n')


def test_tabs_and_crlf_are_kept_and_copied():
    text = 'upstream app {\r\n\tserver a:1;\r\n\tkeepalive 4;\r\n}\r\n'

    after = edited(text, {'address': 'unix:/run/app.sock', 'down': True})

    assert after == 'upstream app {\r\n\tserver a:1;\r\n\tserver unix:/run/app.sock down;\r\n\tkeepalive 4;\r\n}\r\n'


def test_one_line_block_is_edited_in_line():
    text = 'upstream app { server a:1; server b:2; }\n'

    assert edited(text, {'address': 'c:3'}, purge=True) == 'upstream app { server c:3; }\n'
    assert edited(text, {'address': 'a:1', 'state': 'absent'}) == 'upstream app { server b:2; }\n'


def test_removed_server_takes_its_line_and_trailing_comment_only():
    after = edited(SITE, {'address': '10.0.0.1:8080', 'state': 'absent'})

    assert after == SITE.replace('    server 10.0.0.1:8080 weight=5 max_conns=100;  # first\n', '')


def test_absent_server_that_is_not_there_changes_nothing():
    assert edited(SITE, {'address': '10.0.0.9:8080', 'state': 'absent'}) == SITE


def test_purge_with_a_disjoint_list_swaps_the_set_and_keeps_other_directives():
    blue = ('upstream app {\n    hash $request_uri consistent;\n    zone app 64k;\n'
            '    server 10.0.0.1:80;\n    server 10.0.0.2:80 max_conns=3;\n    keepalive 32;\n}\n')

    green = edited(blue, {'address': '10.0.1.1:80'}, {'address': '10.0.1.2:80', 'weight': 2}, purge=True)

    assert green == ('upstream app {\n    hash $request_uri consistent;\n    zone app 64k;\n'
                     '    server 10.0.1.1:80;\n    server 10.0.1.2:80 weight=2;\n    keepalive 32;\n}\n')


def test_purge_keeps_listed_servers_untouched():
    after = edited(SITE, {'address': '10.0.0.2:8080'}, purge=True)

    assert app_servers(after).keys() == {'10.0.0.2:8080'}
    assert '    server 10.0.0.2:8080\n           weight=3   # spread over lines\n           max_fails=2;\n' in after


def test_server_added_to_a_block_without_servers_goes_before_the_brace():
    text = 'http {\n  upstream app {\n    zone app 64k;\n  }\n}\n'

    assert edited(text, {'address': 'a:1'}) == 'http {\n  upstream app {\n    zone app 64k;\n    server a:1;\n  }\n}\n'


@pytest.mark.parametrize('read', [
    lambda text: edit_upstream(text, 'app', [{'address': 'c:3'}], purge=True),
    lambda text: upstream_servers(text, 'app'),
    lambda text: describe_upstreams(text),
])
def test_include_inside_the_upstream_is_refused(read):
    # A purge would leave the included servers live while reporting only c:3.
    text = 'upstream app {\n    server a:1;\n    include app-servers.conf;\n}\n'

    with pytest.raises(NginxConfError, match=r"^line 3: upstream 'app' includes app-servers.conf; its servers there "
                                             "cannot be read or changed here"):
        read(text)


def test_file_with_a_byte_order_mark_is_refused_not_read_as_empty():
    text = '\ufeffupstream app {\n    server a:1;\n}\n'

    for read in (lambda: describe_upstreams(text), lambda: edited(text, {'address': 'a:1', 'weight': 2})):
        with pytest.raises(NginxConfError, match=r'^line 1: the file starts with a UTF-8 byte order mark \(BOM\)'):
            read()


def test_servers_are_reported_in_the_one_normalised_form():
    text = 'upstream app { server App1.Example; server [FD00:0::4]:8080; server 10.0.0.1:8000; server unix:/r.sock; }'

    assert [server['address'] for server in upstream_servers(text, 'app')] == [
        'app1.example:80', '[fd00::4]:8080', '10.0.0.1:8000', 'unix:/r.sock']


@pytest.mark.parametrize('text', [SITE, SITE.replace('\n', '\r\n'), 'upstream app { server a:1; server b:2; }'])
def test_same_change_twice_is_a_no_op(text):
    servers = ({'address': '10.0.0.1:8080', 'weight': 9, 'down': True}, {'address': 'b:2', 'state': 'absent'},
               {'address': 'new:3', 'max_fails': 0})

    once = edited(text, *servers)

    assert once != text
    assert edited(once, *servers) == once


def test_bytes_that_are_not_utf8_survive():
    raw = 'upstream app {\n    # caf\xe9 in latin-1\n    server a:1;\n}\n'.encode('latin-1')
    text = raw.decode('utf-8', 'surrogateescape')

    after = edited(text, {'address': 'a:1', 'weight': 2}).encode('utf-8', 'surrogateescape')

    assert after == raw.replace(b'server a:1;', b'server a:1 weight=2;')


@pytest.mark.parametrize('server, message', [
    ({'address': 'a:1', 'weight': 0}, "weight 0 of server a:1 is below 1: Nginx has no weight 0; to send a server "
                                      "no traffic, give it down: true"),
    ({'address': 'a:1', 'weight': -2}, 'weight -2 of server a:1 is below 1'),
    ({'address': 'a:1', 'max_fails': -1}, 'max_fails -1 of server a:1 is below 0'),
    ({'address': 'a:1', 'fail_timeout': '10 s'}, "fail_timeout '10 s' of server a:1 is not an Nginx time"),
    ({'address': 'web1'}, "server address 'web1' is not host:port, [ipv6]:port or unix:/path: it is not host:port"),
    ({'address': 'a:1; server evil:2'}, "server address 'a:1; server evil:2' is not host:port, [ipv6]:port or "
                                        "unix:/path: it does not start with an IPv4 address"),
    ({'address': 'a:70000'}, "server address 'a:70000' is not host:port, [ipv6]:port or unix:/path: it does not "
                             "end in a port from 1 to 65535"),
    ({'address': '10.0.0.256:80'}, "server address '10.0.0.256:80' is not host:port, [ipv6]:port or unix:/path: "
                                   "it does not hold a valid IPv4 address"),
    ({'address': '[fe80::zz]:80'}, "server address '[fe80::zz]:80' is not host:port, [ipv6]:port or unix:/path: "
                                   "it does not hold an IPv6 address"),
    ({'address': 'a:1', 'weight': 10 ** 12}, "weight '1000000000000' of server a:1 is out of range: an Nginx server "
                                             "weight must be from 1 to 1000000"),
    ({'weight': 3}, "every server needs an address; got {'weight': 3}"),
])
def test_bad_server_is_refused_naming_the_value(server, message):
    with pytest.raises(NginxConfError, match='^' + message.replace('[', r'\[').replace('(', r'\(')):
        edited(SITE, server)


def test_address_listed_twice_is_refused():
    with pytest.raises(NginxConfError, match="server address 'A:80' is listed twice"):
        edited(SITE, {'address': 'a:80'}, {'address': 'A:80'})


def test_unknown_upstream_is_named_with_the_ones_found():
    with pytest.raises(NginxConfError, match=r"no upstream named 'ap' \(upstreams found: app_v2, app, app2\)"):
        edit_upstream(SITE, 'ap', [])


def test_upstream_defined_twice_is_refused():
    with pytest.raises(NginxConfError, match=r"upstream 'app' is defined 2 times \(lines 1, 2\)"):
        edit_upstream('upstream app { server a:1; }\nupstream app { server b:1; }\n', 'app', [])


def test_ambiguous_server_line_is_refused():
    with pytest.raises(NginxConfError, match=r"server a:1 appears 2 times in upstream 'app' \(lines 1, 1\)"):
        edited('upstream app { server a:1; server a:1 backup; }', {'address': 'a:1', 'weight': 2})


@pytest.mark.parametrize('text, message', [
    ('upstream app { server a:1;', 'unexpected end of file'),
    ('upstream app { server a:1; }\n}', 'line 2: unexpected "}"'),
    ('upstream app {\n server "a:1; }', 'line 2: unterminated quote'),
    ('upstream app {\n ; }', 'line 2: unexpected ";"'),
    ('upstream app {\n server a:1 weight=x; }', "line 2: weight of server a:1 is 'x', not a number"),
])
def test_broken_config_is_reported_with_its_line(text, message):
    with pytest.raises(NginxConfError, match=message):
        upstream_servers(text, 'app')


def test_nginx_dump_is_split_per_file():
    dump = ('# configuration file /etc/nginx/nginx.conf:\nhttp { include conf.d/*.conf; }\n\n'
            '# configuration file /etc/nginx/conf.d/app.conf:\nupstream app { server a:1; }\n')

    assert split_config_dump(dump) == [('/etc/nginx/nginx.conf', 'http { include conf.d/*.conf; }\n\n'),
                                       ('/etc/nginx/conf.d/app.conf', 'upstream app { server a:1; }\n')]
    with pytest.raises(NginxConfError, match='is this the output of nginx -T'):
        split_config_dump('nginx: the configuration file syntax is ok\n')


def test_a_comment_that_reads_like_a_dump_header_does_not_split_the_dump():
    app_conf = ('# configuration file /etc/nginx/sites/other.conf:\n'    # top level, but no include names it
                'upstream app {\n'
                '# configuration file /etc/nginx/conf.d/app.conf:\n'     # inside a block
                '    server a:1;\n}\n')
    main_conf = 'http { include conf.d/*.conf; include /etc/nginx/mime.types; }\n\n'
    dump = ('# configuration file /etc/nginx/nginx.conf:\n' + main_conf +
            '# configuration file /etc/nginx/conf.d/app.conf:\n' + app_conf + '\n'
            '# configuration file /etc/nginx/mime.types:\ntypes { text/html html; }\n\n')

    assert split_config_dump(dump) == [('/etc/nginx/nginx.conf', main_conf),
                                       ('/etc/nginx/conf.d/app.conf', app_conf + '\n'),
                                       ('/etc/nginx/mime.types', 'types { text/html html; }\n\n')]
    assert upstream_servers(split_config_dump(dump)[1][1], 'app')[0]['address'] == 'a:1'
