//! The arena planner on tiny graphs whose best plan is computed by hand (each test says how), the
//! overlap checker on a broken plan, and the in-place / aliasing rules.

use nnblob::graph::parse_spec;
use nnblob::plan::{check_overlaps, dump, plan};

fn planned(spec: &str) -> (nnblob::graph::Graph, nnblob::plan::Plan) {
    let g = parse_spec(spec, "t", "t").unwrap();
    let p = plan(&g);
    check_overlaps(&p).unwrap();
    (g, p)
}

/// Hand-computed: a chain of three pools halving the height of an 8x8 image, values of 64, 32,
/// 16 and 8 floats. Only neighbours are live together, so the lower bound is the largest
/// neighbour pair, 64 + 32 = 96, and the greedy plan reaches it.
#[test]
fn chain_hand_computed_arena_equals_largest_neighbour_pair() {
    let (_, p) = planned(
        "input x: [1, 8, 8]\nforward:\n    a = max_pool2d(x, (2, 1))\n    b = max_pool2d(a, (2, 1))\n    return max_pool2d(b, (2, 1))\n",
    );
    // x 64, a 32, b 16, out 8 floats: pairs 96, 48, 24.
    assert_eq!(p.lower_bound, 4 * 96);
    assert_eq!(p.arena, 4 * 96);
}

/// Hand-computed: a skip connection keeps x (64 floats) alive while a (32, a pool of x) and b
/// (64, a concatenation of a with itself) are computed. Step 0: a = pool(x), live x + a = 96;
/// step 1: b = cat([a, a]), live x + a + b = 160; step 2: out = x + b in place over x (its last
/// read), live x + b = 128. Lower bound and arena: 160.
#[test]
fn skip_connection_hand_computed() {
    let (g, p) = planned(
        "input x: [1, 8, 8]\nforward:\n    a = max_pool2d(x, (2, 1))\n    b = cat([a, a], dim=2)\n    return x + b\n",
    );
    assert_eq!(p.lower_bound, 4 * 160, "{}", dump(&g, &p));
    assert_eq!(p.arena, 4 * 160, "{}", dump(&g, &p));
    // The add wrote over x: same offset, one buffer.
    let (x, out) = (g.inputs[0], g.outputs[0]);
    assert_eq!(p.value_offset[x], p.value_offset[out]);
}

/// In place: relu over a value read for the last time shares its buffer; flatten aliases its
/// input. Hand-computed: one 64-float buffer for everything.
#[test]
fn elementwise_ops_run_in_place_and_reshapes_alias() {
    let (g, p) = planned("input x: [1, 8, 8]\nforward:\n    y = relu(x)\n    z = sigmoid(y)\n    return flatten(z, 1)\n");
    assert_eq!(p.buffers.len(), 1, "{}", dump(&g, &p));
    assert_eq!((p.arena, p.lower_bound), (4 * 64, 4 * 64));
}

/// Not in place when the input is still needed later: relu(x) while x feeds the add after it.
/// Hand-computed: x and y (64 each) are live together: 128.
#[test]
fn no_in_place_while_the_input_is_still_read() {
    let (g, p) = planned("input x: [1, 8, 8]\nforward:\n    y = relu(x)\n    return x + y\n");
    assert_eq!(p.lower_bound, 4 * 128, "{}", dump(&g, &p));
    assert_eq!(p.arena, 4 * 128);
    assert_ne!(
        p.value_offset[g.inputs[0]],
        p.value_offset[g.nodes[0].output]
    );
}

/// Largest-first alone would place this chain in 64512 floats; the lower bound is 55296. The
/// planner tries other orders too and must reach the bound (MobileNetV1 0.25's first blocks,
/// optimized: convolutions only).
#[test]
fn chain_where_largest_first_alone_is_not_optimal() {
    let (g, p) = planned(
        "input x: [3, 96, 96]\nc1 = Conv2d(3, 8, 3, stride=2, padding=(0, 1, 0, 1))\nc2 = Conv2d(8, 8, 3, padding=1, groups=8)\nc3 = Conv2d(8, 16, 1)\nc4 = Conv2d(16, 16, 3, stride=2, padding=(0, 1, 0, 1), groups=16)\nforward:\n    return c4(c3(c2(c1(x))))\n",
    );
    // x 27648, c1 18432, c2 18432, c3 36864, c4 9216: worst pair c2 + c3 = 55296.
    assert_eq!(p.lower_bound, 4 * 55296, "{}", dump(&g, &p));
    assert_eq!(p.arena, 4 * 55296, "{}", dump(&g, &p));
}

#[test]
fn the_overlap_checker_catches_a_broken_plan() {
    let (_, mut p) = planned("input x: [1, 8, 8]\nforward:\n    y = relu(x)\n    return x + y\n");
    let offset = p.buffers[0].offset;
    p.buffers[1].offset = offset + 10;
    let err = check_overlaps(&p).unwrap_err();
    assert!(err.contains("overlap"), "{err}");
}

#[test]
fn dump_lists_every_buffer_and_the_totals() {
    let (g, p) = planned("input x: [1, 8, 8]\nforward:\n    y = relu(x)\n    return x + y\n");
    let text = dump(&g, &p);
    assert!(
        text.contains("x [1, 1, 8, 8]") && text.contains("relu_1 [1, 1, 8, 8]"),
        "{text}"
    );
    assert!(
        text.contains("arena 512 bytes, lower bound 512 bytes, ratio 1.000"),
        "{text}"
    );
}
