//! The built-in profiles run real programs; profile files are validated before anything runs.

use crate::common::*;

#[test]
fn default_runs_shell_coreutils_python_and_a_static_binary() {
    let s = Scratch::new();
    std::fs::write(s.join("hello.c"), "#include <stdio.h>\nint main(void){puts(\"static hello\");return 0;}\n").unwrap();
    let st = std::process::Command::new("gcc").args(["-static", "-O2", "-o"]).arg(s.join("hello")).arg(s.join("hello.c")).status().unwrap();
    assert!(st.success(), "gcc -static failed");
    chown_user(&s.join("hello"));
    let r = run_in(
        &s,
        &["--", "sh", "-c", "./hello && printf 'b\\na\\n' | sort | tr -d '\\n' && echo && ls hello.c && wc -l < hello.c && python3 -c 'import json,sqlite3,hashlib; print(json.dumps({\"ok\": hashlib.sha256(b\"x\").hexdigest()[:8]}))'"],
    );
    assert_eq!(r.stdout(), "static hello\nab\nhello.c\n2\n{\"ok\": \"2d711642\"}\n", "{}", r.stderr());
    assert_eq!(r.v()["blocked"], serde_json::json!([]), "the default profile denied something a normal program does");
}

#[test]
fn ci_builds_with_cc_make_git_and_venv() {
    let s = Scratch::new();
    s.write("main.c", "#include <stdio.h>\nint main(void){printf(\"built %d\\n\", 6*7);return 0;}\n");
    s.write("Makefile", "app: main.c\n\tcc -O2 -o app main.c\n");
    let script = "make -s && ./app && git init -q repo && cd repo && git -c user.email=a@b -c user.name=ci commit -q --allow-empty -m init && git log --format=%s && cd .. && python3 -m venv venv && ./venv/bin/python -c 'import sys; print(sys.prefix.endswith(\"venv\"))'";
    let r = run_in(&s, &["--profile", "ci", "--", "sh", "-c", script]);
    assert_eq!(r.v()["enforced"]["network"]["host_loopback"], false);
    assert!(["pasta", "slirp4netns"].contains(&r.v()["enforced"]["network"]["mode"].as_str().unwrap()), "{}", r.v()["enforced"]["network"]);
    assert_eq!(r.stdout(), "built 42\ninit\nTrue\n", "{}", r.stderr());
    assert_eq!(r.status(), "OK");
    assert!(s.join("app").exists() && s.join("venv/bin/python").exists());
}

/// The judge profile requires a cgroup leaf, which this host cannot give (the VM tier runs it
/// with one): here it runs with sampled limits, explicitly.
fn judge(s: &Scratch, sol_dir: &std::path::Path, input: &std::path::Path, cmd: &[&str]) -> Run {
    let mut args = vec!["--profile", "judge", "--no-require-cgroup", "--ro-bind", sol_dir.to_str().unwrap(), "/sol", "--chdir", "/sol", "--stdin", input.to_str().unwrap()];
    args.push("--");
    args.extend(cmd);
    run_in(s, &args)
}

#[test]
fn judge_runs_c_cpp_python_and_java_solutions() {
    let s = Scratch::new();
    let sol = s.mkdir("sol");
    let input = s.write("in.txt", "20 22\n");
    std::fs::write(sol.join("a.c"), "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);return 0;}\n").unwrap();
    std::fs::write(sol.join("a.cpp"), "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<std::endl;}\n").unwrap();
    std::fs::write(sol.join("a.py"), "a, b = map(int, input().split())\nprint(a + b)\n").unwrap();
    for (out, src, cc) in [("c.out", "a.c", "gcc"), ("cpp.out", "a.cpp", "g++")] {
        let st = std::process::Command::new(cc).args(["-O2", "-o"]).arg(sol.join(out)).arg(sol.join(src)).status().unwrap();
        assert!(st.success());
    }
    for cmd in [&["./c.out"][..], &["./cpp.out"][..], &["python3", "a.py"][..]] {
        let r = judge(&s, &sol, &input, cmd);
        assert_eq!(r.stdout(), "42\n", "{cmd:?}: {}", r.stderr());
        assert_eq!(r.status(), "OK");
        assert_eq!(r.v()["blocked"], serde_json::json!([]), "{cmd:?}");
    }
    if std::process::Command::new("javac").arg("-version").output().is_err() {
        eprintln!("skipped: the Java case needs a JDK (javac); none is installed");
        return;
    }
    std::fs::write(sol.join("Main.java"), "import java.util.*;\npublic class Main{public static void main(String[] x){Scanner s=new Scanner(System.in);long a=s.nextLong(),b=s.nextLong();System.out.println(a+b);}}\n").unwrap();
    let st = std::process::Command::new("javac").arg("-d").arg(&sol).arg(sol.join("Main.java")).status().unwrap();
    assert!(st.success());
    let r = judge(&s, &sol, &input, &["java", "-Xmx256m", "-Xss64m", "Main"]);
    assert_eq!(r.stdout(), "42\n", "java: {}", r.stderr());
    assert_eq!(r.status(), "OK");
}

#[test]
fn judge_profile_requires_a_cgroup() {
    let s = Scratch::new();
    let r = run_in(&s, &["--profile", "judge", "--", "true"]);
    assert_eq!(r.code(), 125);
    assert!(r.stderr().contains("--require-cgroup: no cgroup can be used: cgroup v2 is not mounted"), "{}", r.stderr());
}

#[test]
fn judge_profile_denies_sockets_and_can_kill() {
    let s = Scratch::new();
    let r = run_in(&s, &["--profile", "judge", "--no-require-cgroup", "--", "python3", "-c", "import socket\ntry:\n socket.socketpair()\nexcept OSError as e: print(e.errno)"]);
    assert_eq!(r.stdout(), "1\n", "{}", r.stderr()); // EPERM: socketpair is not in the judge's set
    let r = run_in(&s, &["--profile", "judge", "--no-require-cgroup", "--on-deny", "kill", "--", "python3", "-c", "import socket\nsocket.socketpair()\nprint('survived')"]);
    assert_eq!(r.status(), "SYS");
    assert_eq!(r.stdout(), "");
}

#[test]
fn profile_list_and_show() {
    let s = Scratch::new();
    let out = ward_cmd(s.path(), &["profile", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("default  An unknown binary") && text.contains("\njudge ") && text.contains("\nci "), "{text}");
    let out = ward_cmd(s.path(), &["profile", "show", "ci"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // merged: ci extends default, so default's landlock and seccomp settings show up
    assert!(text.contains("allow_ptrace = true") && text.contains("abi = 7") && text.contains("tmp_size = \"1G\""), "{text}");
    // what show prints is a valid profile that runs
    let f = s.write("mine.toml", &text);
    let r = run_in(&s, &["--profile", f.to_str().unwrap(), "--", "true"]);
    assert_eq!(r.status(), "OK", "{}", r.stderr());
}

#[test]
fn bad_profiles_are_refused_before_running() {
    let s = Scratch::new();
    let cases = [
        ("[tree]\nworkdir = \"none\"\nfrobnicate = true\n", "line 3"),
        ("[seccomp]\nallow = [\"@basic\", \"not_a_syscall\"]\n", "seccomp.allow: unknown system call \"not_a_syscall\""),
        ("[landlock]\nabi = 9\n", "landlock.abi = 9"),
        ("[limits]\ncpus = 1\n", "--cpus: no cgroup can be used"),
        ("extends = \"nope\"\n", "no such built-in profile"),
    ];
    for (text, want) in cases {
        let f = s.write("bad.toml", text);
        let r = run_in(&s, &["--profile", f.to_str().unwrap(), "--", "touch", "ran"]);
        assert_eq!(r.code(), 125, "{text}");
        assert!(r.stderr().contains(want), "{text}: {}", r.stderr());
        assert!(!s.join("ran").exists());
    }
    let r = run_in(&s, &["--profile", "/nonexistent.toml", "--", "true"]);
    assert!(r.stderr().contains("--profile /nonexistent.toml: No such file"), "{}", r.stderr());
}
