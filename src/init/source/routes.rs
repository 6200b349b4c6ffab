//! Which POST routes a service declares, the first places to look for its chat route.

use std::sync::LazyLock;

use regex::Regex;

/// A POST route the source declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRead {
    pub path: String,
    pub at: String,
}

/// POST route declarations: FastAPI/Flask/Express/Fastify/Hono (`.post("/x"`), axum
/// (`.route("/x", post(`), Gin/Echo (`.POST("/x"`), Spring (`@PostMapping("/x")`), Flask's
/// `@app.route("/x", methods=["POST"])`.
static ROUTES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?:\.(?:post|POST)\(\s*["'`](/[^"'`\s]*)["'`])"#,
        r#"|(?:\.route\(\s*"(/[^"\s]*)"\s*,\s*(?:[\w:]+::)?post\()"#,
        r#"|(?:@PostMapping\(\s*(?:value\s*=\s*)?"(/[^"\s]*)")"#,
        r#"|(?:\.route\(\s*["'](/[^"'\s]*)["'][^)]*methods\s*=\s*\[[^\]]*["']POST["'])"#,
    ))
    .expect("a valid pattern")
});

pub(super) fn read_routes(shown: &str, text: &str, routes: &mut Vec<RouteRead>) {
    for found in ROUTES.captures_iter(text) {
        let Some(path) = (1..=4).find_map(|group| found.get(group)) else {
            continue;
        };
        // `/chat/{id}`, `/chat/:id`, `/chat/<id>`: a route faultline cannot fill in.
        if path.as_str().contains(['{', ':', '<', '*']) {
            continue;
        }
        if routes.iter().any(|r| r.path == path.as_str()) {
            continue;
        }
        routes.push(RouteRead {
            path: path.as_str().to_string(),
            at: format!("{shown}:{}", text[..path.start()].matches('\n').count() + 1),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_routes_are_found_in_each_framework() {
        let mut routes = Vec::new();
        read_routes(
            "app.py",
            "@app.post(\"/v2/ask\")\n@app.get(\"/healthz\")\n",
            &mut routes,
        );
        read_routes(
            "s.ts",
            "app.post('/api/chat', h)\nrouter.post(\"/chat/:id\", h)\n",
            &mut routes,
        );
        read_routes(
            "main.rs",
            ".route(\"/v1/chat\", post(chat))\n.route(\"/x\", axum::routing::post(x))\n",
            &mut routes,
        );
        read_routes("a.go", "r.POST(\"/ask\", ask)", &mut routes);
        read_routes("A.java", "@PostMapping(\"/question\")", &mut routes);
        read_routes(
            "f.py",
            "@app.route(\"/q\", methods=[\"POST\"])",
            &mut routes,
        );
        let paths: Vec<&str> = routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/v2/ask",
                "/api/chat",
                "/v1/chat",
                "/x",
                "/ask",
                "/question",
                "/q"
            ]
        );
        assert_eq!(routes[0].at, "app.py:1");
    }
}
