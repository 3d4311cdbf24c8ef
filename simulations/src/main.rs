//! shoal-sim: site simulations. The simulations issue fills this binary; until then it
//! says so and exits non-zero, so no script mistakes it for a finished run.

fn main() {
    eprintln!(
        "shoal-sim: not built yet (see the simulations issue); use shoal-seeder for the offline release tools"
    );
    std::process::exit(2);
}
