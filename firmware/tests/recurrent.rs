//! GRU / LSTM layers on the engine: a stepping run continues where the last one stopped, so
//! a sequence fed frame by frame gives the whole-sequence run's bits; and every field of the
//! op is checked at load time, the state's isolation included. (Agreement with PyTorch is
//! the converter's tests': host-tool/tests/blob_ops.rs on torch's op cases.)

mod common;
use common::*;
use nnblob_firmware::{Error, Model};
use nnblob_format::encode::ModelRepr;
use nnblob_format::meta::{Cell, Op, Recurrent};
use nnblob_format::WeightDtype;

/// The op with its weights held by the test.
type OwnedRecurrent = Recurrent<Vec<f32>, Vec<f32>>;

const INPUT: u32 = 4;
const HIDDEN: u32 = 5;

/// One recurrent layer over `steps` frames, batch-first `[1, steps, 4]` -> `[1, steps, 5]`;
/// tensors: input, output, state, scratch.
fn layer(cell: Cell, steps: u32, reverse: bool) -> ModelRepr {
    let gates = cell.gates() as u32 * HIDDEN;
    let mut rng = Rng(11);
    let op = Op::Recurrent(Recurrent {
        input: 0,
        output: 1,
        state: 2,
        scratch: 3,
        cell,
        hidden: HIDDEN,
        batch_first: true,
        reverse,
        weight_ih: rng.vec((gates * INPUT) as usize),
        weight_hh: rng.vec((gates * HIDDEN) as usize),
        bias_ih: Some(rng.vec(gates as usize)),
        bias_hh: Some(rng.vec(gates as usize)),
    });
    let states = cell.state_vectors() as u32;
    let shapes: [&[u32]; 4] = [
        &[1, steps, INPUT],
        &[1, steps, HIDDEN],
        &[states, 1, HIDDEN],
        &[2, gates],
    ];
    model(WeightDtype::F16, &shapes, &[0], &[1], vec![op])
}

#[test]
fn frame_by_frame_steps_give_the_whole_sequence_bits() {
    const STEPS: usize = 6;
    let x = Rng(3).vec(STEPS * INPUT as usize);
    for cell in [Cell::Gru, Cell::Lstm] {
        let whole = &run(&layer(cell, STEPS as u32, false), &[&x])[0];
        let blob = layer(cell, 1, false).to_vec().unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        assert!(model.has_state());
        assert_eq!(
            model.state_bytes(),
            4 * cell.state_vectors() * HIDDEN as usize
        );
        let mut arena = vec![f32::NAN; model.arena_len()];
        let mut frame = vec![0.0; HIDDEN as usize];
        model.reset_state(&mut arena).unwrap();
        for (t, xt) in x.chunks(INPUT as usize).enumerate() {
            model.step(xt, &mut frame, &mut arena).unwrap();
            let want = &whole[t * HIDDEN as usize..(t + 1) * HIDDEN as usize];
            assert_bits(&frame, want);
        }
        // `run` starts from a zero state whatever the arena holds: the first frame again.
        model
            .run(&x[..INPUT as usize], &mut frame, &mut arena)
            .unwrap();
        assert_bits(&frame, &whole[..HIDDEN as usize]);
        // And steps go on from there.
        model
            .step(
                &x[INPUT as usize..2 * INPUT as usize],
                &mut frame,
                &mut arena,
            )
            .unwrap();
        assert_bits(&frame, &whole[HIDDEN as usize..2 * HIDDEN as usize]);
    }
}

#[test]
fn a_reverse_layer_reads_the_sequence_from_its_end() {
    const STEPS: usize = 5;
    let x = Rng(4).vec(STEPS * INPUT as usize);
    let h = HIDDEN as usize;
    for cell in [Cell::Gru, Cell::Lstm] {
        let backward = &run(&layer(cell, STEPS as u32, true), &[&x])[0];
        // The forward layer on the frames in reverse order, its output frames reversed back.
        let flipped: Vec<f32> = x.chunks(INPUT as usize).rev().flatten().copied().collect();
        let forward = &run(&layer(cell, STEPS as u32, false), &[&flipped])[0];
        let unflipped: Vec<f32> = forward.chunks(h).rev().flatten().copied().collect();
        assert_bits(backward, &unflipped);
    }
}

#[test]
fn recurrent_layers_are_checked_field_by_field() {
    let refused = |f: &dyn Fn(&mut ModelRepr)| {
        let mut m = layer(Cell::Lstm, 3, false);
        f(&mut m);
        Model::from_bytes(&m.to_vec().unwrap()).unwrap_err()
    };
    let op = |m: &mut ModelRepr, f: &dyn Fn(&mut OwnedRecurrent)| {
        if let Op::Recurrent(r) = &mut m.ops[0] {
            f(r);
        }
    };
    let shape = |tensor| Error::OpShape { op: 0, tensor };
    let weight = |field| Error::OpWeight { op: 0, field };
    assert_eq!(
        refused(&|m| op(m, &|r| r.hidden = 0)),
        Error::OpParam {
            op: 0,
            field: "hidden"
        }
    );
    // A hidden size the tensors do not have; a GRU's state and scratch for an LSTM's.
    assert_eq!(refused(&|m| op(m, &|r| r.hidden = 4)), shape(1));
    assert_eq!(refused(&|m| op(m, &|r| r.cell = Cell::Gru)), shape(2));
    assert_eq!(refused(&|m| m.tensors[2].shape = vec![2, 1, 4]), shape(2));
    assert_eq!(refused(&|m| m.tensors[3].shape = vec![2, 19]), shape(3));
    assert_eq!(
        refused(&|m| m.tensors[0].shape = vec![1, 3, 4, 1]),
        shape(0)
    );
    // The time-major reading of the same tensors: batch 3, which the state does not have.
    assert_eq!(refused(&|m| op(m, &|r| r.batch_first = false)), shape(2));
    assert_eq!(
        refused(&|m| op(m, &|r| r.weight_ih.truncate(10))),
        weight("weight_ih")
    );
    assert_eq!(
        refused(&|m| op(m, &|r| r.weight_hh.push(0.0))),
        weight("weight_hh")
    );
    assert_eq!(
        refused(&|m| op(m, &|r| r.bias_hh = Some(vec![0.0; 3]))),
        weight("bias_hh")
    );
    // The four buffers are held at once: no two may overlap.
    assert_eq!(
        refused(&|m| m.tensors[3].offset = m.tensors[1].offset),
        Error::OpOverlap { op: 0, tensor: 3 }
    );
    // The state must be the op's alone: not a model output, not under another tensor.
    let shared = Error::StateShared { op: 0, tensor: 2 };
    assert_eq!(refused(&|m| m.outputs.push(("h".into(), 2))), shared);
    assert_eq!(
        refused(&|m| {
            let state = m.tensors[2].clone();
            m.tensors.push(state);
        }),
        shared
    );
}

/// Writes a seed blob for the fuzzer when `NNBLOB_WRITE_FUZZ_SEEDS` names a folder.
#[test]
fn write_fuzz_seeds() {
    write_fuzz_seed("lstm", &layer(Cell::Lstm, 3, false));
}
